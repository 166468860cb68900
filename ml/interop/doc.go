// Package interop holds mlbuild's interoperability tests against the Hugging
// Face libraries (transformers, PEFT, tokenizers, safetensors), run in the
// pinned Python environment that tools/python/env.sh prepares: models made
// by transformers load and decode the same in mlbuild, and mlbuild's
// artifacts load the same in the libraries. The tests find the
// environment's python through MLBUILD_PYTHON (.ci/run sets it) and skip,
// saying so, where it is unset. mlbuild itself never runs Python; only these
// tests do. docs/models.md lists what each test compares and its tolerance.
package interop
