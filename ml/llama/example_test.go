package llama_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"strings"

	"github.com/mlbuild/mlbuild/internal/tinymodel"
	"github.com/mlbuild/mlbuild/ml/llama"
	"github.com/mlbuild/mlbuild/ml/tensor"
	"github.com/mlbuild/mlbuild/ml/tokenizer"
)

// writeTinyModel writes a tiny random llama (2 layers, hidden size 32)
// with a character-level tokenizer into a new temporary folder. It stands
// in for a Hugging Face model directory such as Mistral-7B-v0.1.
func writeTinyModel() string {
	dir, err := os.MkdirTemp("", "mlbuild-llama-example-")
	if err != nil {
		log.Fatal(err)
	}
	chars := strings.Split("abcdefghijklmnopqrstuvwxyz .", "")
	spec := tinymodel.Spec{Seed: 1, VocabSize: 3 + len(chars), MaxPositions: 64, Chars: chars}
	if err := tinymodel.Write(dir, spec); err != nil {
		log.Fatal(err)
	}
	return dir
}

// Load a model and its tokenizer, and continue a prompt greedily. (The
// tiny model's weights are random, so its text is gibberish.)
func Example() {
	dir := writeTinyModel()
	defer os.RemoveAll(dir)

	model, err := llama.Load(dir, tensor.NewCPU(0)) // 0: GOMAXPROCS workers
	if err != nil {
		log.Fatal(err)
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		log.Fatal(err)
	}

	prompt := tok.Encode("the cat", true) // true: BOS first
	opts := llama.GenOptions{
		MaxTokens:  12,
		StopTokens: []int{tok.EOS()},
		// Temperature 0: greedy decoding, the same tokens on every run
		// and for every number of workers.
	}
	ids, err := model.Generate(context.Background(), prompt, opts, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("prompt:", prompt)
	fmt.Println("generated:", ids)
	fmt.Printf("text: %q\n", tok.Decode(ids, true))

	// Output:
	// prompt: [1 22 10 7 29 5 3 22]
	// generated: [20 25 29 22 22 22 15 9 30 15 29 22]
	// text: "rw tttmg.m t"
}

// Sample with a temperature and a seed, and print the text as it is
// generated: Generate calls emit with each token as soon as it is chosen,
// and a tokenizer.StreamDecoder turns the ids into text piece by piece.
// The same seed gives the same tokens.
func ExampleModel_Generate_streaming() {
	dir := writeTinyModel()
	defer os.RemoveAll(dir)
	model, err := llama.Load(dir, tensor.NewCPU(0))
	if err != nil {
		log.Fatal(err)
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		log.Fatal(err)
	}

	opts := llama.GenOptions{MaxTokens: 12, Temperature: 0.8, TopP: 0.95, Seed: 4, StopTokens: []int{tok.EOS()}}
	dec := tok.NewStreamDecoder(true) // true: skip special tokens
	emit := func(id int) error {
		piece, err := dec.Next(id)
		fmt.Print(piece)
		return err
	}
	fmt.Print("the cat")
	ids, err := model.Generate(context.Background(), tok.Encode("the cat", true), opts, emit)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(dec.Flush())
	fmt.Println(len(ids), "tokens:", ids)

	// Output:
	// the cats gurgahymtr
	// 12 tokens: [21 29 9 23 20 9 3 10 27 15 22 20]
}
