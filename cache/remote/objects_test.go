package remote

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// smallParts makes multipart uploads happen at small sizes for the rest of
// the test.
func smallParts(t *testing.T, size int) {
	t.Helper()
	old := partSize
	partSize = size
	t.Cleanup(func() { partSize = old })
}

// testObjectStore is the conformance suite every objectStore passes: what
// bucketStore relies on. keys lists the objects the store holds (straight
// from the server's side, so that a leftover is seen whatever the store's
// own view); prefix is prepended to every key the suite writes.
func testObjectStore(t *testing.T, st objectStore, prefix string, keys func() []string) {
	t.Helper()
	ctx := context.Background()
	key := func(s string) string { return prefix + s }
	smallParts(t, 256<<10)
	rng := rand.New(rand.NewPCG(1, 2))
	payload := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}

	if _, err := st.Stat(ctx, key("ac/missing")); !errors.Is(err, errNoObject) {
		t.Fatalf("Stat of a missing object: %v; want errNoObject", err)
	}
	if _, _, err := st.Open(ctx, key("ac/missing")); !errors.Is(err, errNoObject) {
		t.Fatalf("Open of a missing object: %v; want errNoObject", err)
	}

	for _, n := range []int{0, 1, 1000, 256 << 10, 256<<10 + 1, 3*(256<<10) + 17} {
		data := payload(n)
		k := key("cas/size" + strings.Repeat("x", n%7))
		if err := st.Put(ctx, k, "application/octet-stream", int64(n), exactly(bytes.NewReader(data), int64(n))); err != nil {
			t.Fatalf("Put of %d bytes: %v", n, err)
		}
		size, err := st.Stat(ctx, k)
		if err != nil || size != int64(n) {
			t.Fatalf("Stat after a Put of %d bytes: %d, %v", n, size, err)
		}
		rc, size, err := st.Open(ctx, k)
		if err != nil {
			t.Fatalf("Open after a Put of %d bytes: %v", n, err)
		}
		got, err := io.ReadAll(rc)
		if cerr := rc.Close(); err == nil {
			err = cerr
		}
		if err != nil || size != int64(n) || !bytes.Equal(got, data) {
			t.Fatalf("read back %d bytes (size %d, %v); want the %d put", len(got), size, err, n)
		}
	}

	// A Put over an object replaces it.
	k := key("ac/replace")
	for _, s := range []string{"first version", "second"} {
		if err := st.Put(ctx, k, "application/json", int64(len(s)), exactly(strings.NewReader(s), int64(len(s)))); err != nil {
			t.Fatal(err)
		}
	}
	rc, _, err := st.Open(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	_ = rc.Close()
	if string(got) != "second" {
		t.Fatalf("after two Puts the object holds %q", got)
	}

	// Failed uploads leave nothing, whether the object fits in one request
	// or needs several parts, and whether the reader fails, runs short or
	// runs long, or the context ends.
	before := len(keys())
	big := payload(3*(256<<10) + 5)
	for _, tc := range []struct {
		name string
		n    int
		r    func() io.Reader
		ctx  func() (context.Context, context.CancelFunc)
	}{
		{"failing reader, one part", 1000, func() io.Reader { return &failAfter{r: bytes.NewReader(big[:500])} }, nil},
		{"failing reader, parts", len(big), func() io.Reader { return &failAfter{r: bytes.NewReader(big[:2*(256<<10)+3])} }, nil},
		{"short reader, one part", 1000, func() io.Reader { return bytes.NewReader(big[:999]) }, nil},
		{"short reader, parts", len(big), func() io.Reader { return bytes.NewReader(big[:len(big)-1]) }, nil},
		{"long reader", 1000, func() io.Reader { return bytes.NewReader(big[:1001]) }, nil},
		{"cancelled, parts", len(big), func() io.Reader { return bytes.NewReader(big) }, func() (context.Context, context.CancelFunc) {
			c, cancel := context.WithCancel(ctx)
			cancel()
			return c, cancel
		}},
		{"cancelled mid-upload", len(big), func() io.Reader { return &slowReader{r: bytes.NewReader(big), delay: 20 * time.Millisecond} }, func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(ctx, 100*time.Millisecond)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, cancel := ctx, context.CancelFunc(func() {})
			if tc.ctx != nil {
				c, cancel = tc.ctx()
			}
			defer cancel()
			k := key("cas/failed-" + strings.ReplaceAll(tc.name, " ", "-"))
			if err := st.Put(c, k, "application/octet-stream", int64(tc.n), exactly(tc.r(), int64(tc.n))); err == nil {
				t.Fatal("Put succeeded")
			}
			if _, err := st.Stat(ctx, k); !errors.Is(err, errNoObject) {
				t.Errorf("after a failed Put, Stat says %v; want errNoObject", err)
			}
		})
	}
	if after := keys(); len(after) != before {
		t.Errorf("failed uploads left objects: %d before, now %v", before, after)
	}
}

// failAfter fails once its reader is spent.
type failAfter struct{ r io.Reader }

func (f *failAfter) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, errors.New("the disk went away")
	}
	return n, err
}

// slowReader sleeps before each read of at most 64 KiB.
type slowReader struct {
	r     io.Reader
	delay time.Duration
}

func (s *slowReader) Read(p []byte) (int, error) {
	time.Sleep(s.delay)
	return s.r.Read(p[:min(len(p), 64<<10)])
}
