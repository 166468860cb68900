package engine

// Suggest returns " Did you mean X?" for the candidate closest to given
// (by edit distance, when it is close), else "": the suggestion the
// pipeline's diagnostics give for a misspelt step, kind or variable, for
// the command line's own names (commands, files).
func Suggest(given string, candidates []string) string { return suggest(given, candidates) }
