package command

// SetSandboxCheck replaces the sandbox check for a test; the returned
// function restores it.
func SetSandboxCheck(check func() error) (restore func()) {
	old := checkSandbox
	checkSandbox = check
	return func() { checkSandbox = old }
}
