package cache_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/mlbuild/mlbuild/cache"
)

// Store content in the CAS and read it back by its digest, the SHA-256 of
// the content.
func Example() {
	dir, err := os.MkdirTemp("", "mlbuild-cache-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	store, err := cache.Open(context.Background(), filepath.Join(dir, "cache"), cache.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer func() {
		// Close flushes the database: its error is worth checking.
		if err := store.Close(); err != nil {
			log.Fatal(err)
		}
	}()

	digest, err := store.PutBytes([]byte("hello, world\n"))
	if err != nil {
		log.Fatal(err)
	}
	size, _, err := store.BlobSize(digest)
	if err != nil {
		log.Fatal(err)
	}
	b, err := store.ReadBlob(digest)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(digest, size)
	fmt.Printf("%q\n", b)

	// Output:
	// 853ff93762a06ddbf722c4ebe9ddd66d8f63ddaea97f521c3ecc20da7c976020 13
	// "hello, world\n"
}

// Digest a file or a directory tree, store it, and write it back
// elsewhere. A tree's digest is that of its manifest, which lists each
// file's path, digest and size.
func ExampleStore_PutArtifact() {
	dir, err := os.MkdirTemp("", "mlbuild-cache-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	store, err := cache.Open(context.Background(), filepath.Join(dir, "cache"), cache.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer func() {
		// Close flushes the database: its error is worth checking.
		if err := store.Close(); err != nil {
			log.Fatal(err)
		}
	}()

	model := filepath.Join(dir, "model")
	if err := os.MkdirAll(model, 0o755); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(model, "config.json"), []byte(`{"hidden_size":32}`), 0o644); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(model, "weights.bin"), make([]byte, 4096), 0o644); err != nil {
		log.Fatal(err)
	}

	// The hasher's stat cache (in the store) spares re-reading files
	// that have not changed since they were last digested.
	h := cache.NewHasher(store)
	art, err := h.Digest(model)
	if err != nil {
		log.Fatal(err)
	}
	if err := store.PutArtifact(model, art); err != nil {
		log.Fatal(err)
	}
	fmt.Println("tree", art.Digest, art.Size, "bytes")
	for _, e := range art.Manifest.Entries {
		fmt.Println(" ", e.Path, e.Digest, e.Size)
	}

	// Materialize the tree (read-only files) at a new path.
	copyDir := filepath.Join(dir, "restored")
	if err := store.MaterializeArtifact(art.Digest, art.Dir, copyDir, h); err != nil {
		log.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(copyDir, "config.json"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", b)

	// Output:
	// tree 399b9d126f7861ee3dfbb28e0532d239795c8ced00fd5c923a0f396b11b1f66a 4114 bytes
	//   config.json 6b048c7a1d98968974537f8fcf5907ea25abcb16a81cddd229a0e32713a5fd04 18
	//   weights.bin ad7facb2586fc6e966c004d7d1d16b024f5805ff7cb47c7a85dabd8b48892ca7 4096
	// {"hidden_size":32}
}

// The action cache maps a step's key to its outputs' digests, the
// components the key was computed from and how the outputs were made.
func ExampleStore_PutAction() {
	dir, err := os.MkdirTemp("", "mlbuild-cache-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	store, err := cache.Open(context.Background(), filepath.Join(dir, "cache"), cache.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer func() {
		// Close flushes the database: its error is worth checking.
		if err := store.Close(); err != nil {
			log.Fatal(err)
		}
	}()

	// Outputs go into the CAS first: an action never names a missing blob.
	clean := []byte(`{"text":"Area Man Wins"}` + "\n")
	digest, err := store.PutBytes(clean)
	if err != nil {
		log.Fatal(err)
	}
	ar := &cache.ActionResult{
		Key:  "example-key", // mlbuild uses engine.Key(ar.Components)
		Step: "csv_clean.headlines",
		Components: cache.KeyComponents{
			Kind: "csv_clean", Version: "1",
			Config: map[string]json.RawMessage{"min_words": json.RawMessage("4")},
		},
		Outputs: map[string]cache.OutputRef{
			"output": {Path: "clean.jsonl", Digest: digest, Size: int64(len(clean))},
		},
	}
	if err := store.PutAction(ar); err != nil {
		log.Fatal(err)
	}

	got, ok, err := store.GetAction("example-key")
	if err != nil {
		log.Fatal(err)
	}
	out := got.Outputs["output"]
	fmt.Println(ok, got.Step, out.Path, out.Digest, out.Size)
	_, ok, err = store.GetAction("no-such-key")
	fmt.Println(ok, err)

	// Output:
	// true csv_clean.headlines clean.jsonl 635cd5fe8d412dc15121c5fe7debe229673d42d5687627a67f9deeae4a32552f 25
	// false <nil>
}
