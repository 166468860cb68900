package engine

import (
	"strings"
	"testing"
)

const enabledPipeline = `
variable "given" {
  type    = string
  default = ""
}

step "concat" "own" {
  enabled = var.given == ""
  sources = ["a.txt"]
}

step "concat" "use" {
  sources = [var.given != "" ? var.given : concat.own.output]
}
`

func TestEnabledFalseLeavesTheStepOut(t *testing.T) {
	env := newEnv(t, enabledPipeline)
	env.write("a.txt", "A\n")
	env.write("b.txt", "B\n")

	r := env.run(Options{})
	if r.err != nil {
		t.Fatal(r.err)
	}
	wantStatus(t, r, map[string]Status{"concat.own": StatusRan, "concat.use": StatusRan})
	if got := env.read("build/concat.use/out.txt"); got != "1:1:A\n" {
		t.Fatalf("with the step enabled: %q", got)
	}

	r = env.run(Options{}, "given=b.txt")
	if r.err != nil {
		t.Fatal(r.err)
	}
	wantStatus(t, r, map[string]Status{"concat.use": StatusRan})
	if _, ok := r.status["concat.own"]; ok {
		t.Fatal("the disabled step ran")
	}
	if got := env.read("build/concat.use/out.txt"); got != "1:B\n" {
		t.Fatalf("with the step disabled: %q", got)
	}
}

func TestReferenceToADisabledStepIsAnError(t *testing.T) {
	env := newEnv(t, strings.Replace(enabledPipeline, `var.given != "" ? var.given : concat.own.output`, `concat.own.output`, 1))
	env.write("a.txt", "A\n")
	_, err := env.load("given=x")
	if err == nil || !strings.Contains(err.Error(), "concat.own") || !strings.Contains(err.Error(), "disabled") {
		t.Fatalf("got %v", err)
	}
}

func TestEnabledMustNotDependOnSteps(t *testing.T) {
	env := newEnv(t, `
step "concat" "a" {
  sources = ["a.txt"]
}
step "concat" "b" {
  enabled = concat.a.output != ""
  sources = ["a.txt"]
}
`)
	env.write("a.txt", "A\n")
	_, err := env.load()
	if err == nil || !strings.Contains(err.Error(), "variables") {
		t.Fatalf("got %v", err)
	}
}
