package safetensors

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
)

// Standard file names of a Hugging Face model directory.
const (
	SingleFileName = "model.safetensors"
	IndexFileName  = "model.safetensors.index.json"
)

// Model is the weights of a model directory: one safetensors file, or a
// sharded set described by an index. Its accessors look a tensor up in the
// shard that holds it.
type Model struct {
	dir      string
	files    []*File          // in shard-name order
	where    map[string]*File // tensor name -> file holding it
	names    []string
	indexMD  map[string]any
	fileName map[*File]string
}

// OpenModel opens the weights of the model directory dir the way
// transformers resolves them: dir/model.safetensors when it exists, else
// dir/model.safetensors.index.json and the shards it names. dir may also be
// the path of a single .safetensors file.
//
// For an index, every shard path must stay inside dir, every shard must be a
// valid safetensors file, and every tensor of the weight_map must exist in
// the shard it is mapped to. Tensors present in a shard but absent from the
// weight_map are ignored with a warning.
func OpenModel(dir string) (*Model, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	if st.Mode().IsRegular() {
		return openSingle(filepath.Dir(dir), dir)
	}
	single := filepath.Join(dir, SingleFileName)
	if _, err := os.Stat(single); err == nil {
		return openSingle(dir, single)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	indexPath := filepath.Join(dir, IndexFileName)
	raw, err := os.ReadFile(indexPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("safetensors: %s holds neither %s nor %s", dir, SingleFileName, IndexFileName)
	}
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	return openSharded(dir, indexPath, raw)
}

func openSingle(dir, path string) (*Model, error) {
	f, err := Open(path)
	if err != nil {
		return nil, err
	}
	m := &Model{dir: dir, files: []*File{f}, where: map[string]*File{}, names: f.Names(),
		fileName: map[*File]string{f: filepath.Base(path)}}
	for _, n := range m.names {
		m.where[n] = f
	}
	return m, nil
}

func openSharded(dir, indexPath string, raw []byte) (*Model, error) {
	idxErr := func(format string, args ...any) error {
		return formatErr(indexPath, format, args...)
	}
	entries, err := decodeObject(raw)
	if err != nil {
		return nil, idxErr("invalid JSON: %v", err)
	}
	var weightMap []entry
	var indexMD map[string]any
	for _, e := range entries {
		switch e.key {
		case "weight_map":
			if weightMap, err = decodeObject(e.value); err != nil {
				return nil, idxErr("weight_map: %v", err)
			}
		case "metadata":
			dec := json.NewDecoder(bytes.NewReader(e.value))
			dec.UseNumber()
			if err := dec.Decode(&indexMD); err != nil {
				return nil, idxErr("metadata must be an object: %v", err)
			}
		}
	}
	if len(weightMap) == 0 {
		return nil, idxErr("weight_map is missing or empty")
	}
	m := &Model{dir: dir, where: map[string]*File{}, indexMD: indexMD, fileName: map[*File]string{}}
	shardOf := make(map[string]string, len(weightMap))
	shardSet := map[string]bool{}
	for _, e := range weightMap {
		var shard string
		if err := json.Unmarshal(e.value, &shard); err != nil {
			return nil, idxErr("weight_map[%q]: want a shard file name, got %s", e.key, clip(e.value))
		}
		if shard == "" || !filepath.IsLocal(shard) {
			return nil, idxErr("weight_map[%q]: shard path %q must be a relative path inside the model directory", e.key, shard)
		}
		shardOf[e.key] = shard
		shardSet[shard] = true
	}
	opened := map[string]*File{}
	for _, shard := range sortedKeys(shardSet) {
		f, err := Open(filepath.Join(dir, shard))
		if err != nil {
			m.Close()
			return nil, fmt.Errorf("safetensors: shard %s of %s: %w", shard, indexPath, err)
		}
		opened[shard] = f
		m.files = append(m.files, f)
		m.fileName[f] = shard
	}
	for _, name := range sortedKeys(shardOf) {
		shard := shardOf[name]
		f := opened[shard]
		if _, ok := f.Info(name); !ok {
			m.Close()
			return nil, idxErr("weight_map maps tensor %q to %s, which has no such tensor", name, shard)
		}
		m.where[name] = f
	}
	for _, f := range m.files {
		extra := 0
		for _, n := range f.Names() {
			if _, ok := shardOf[n]; !ok {
				extra++
			}
		}
		if extra > 0 {
			slog.Warn("safetensors: shard holds tensors missing from the index; ignoring them",
				"index", indexPath, "shard", m.fileName[f], "count", extra)
		}
	}
	m.names = sortedKeys(shardOf)
	return m, nil
}

// Dir returns the model directory.
func (m *Model) Dir() string { return m.dir }

// Files returns the safetensors file names (relative to Dir) that were opened.
func (m *Model) Files() []string {
	out := make([]string, len(m.files))
	for i, f := range m.files {
		out[i] = m.fileName[f]
	}
	sort.Strings(out)
	return out
}

// Names returns all tensor names in sorted order.
func (m *Model) Names() []string { return append([]string(nil), m.names...) }

// Info returns the description of the named tensor; Begin and End are
// relative to the data section of the shard holding it.
func (m *Model) Info(name string) (TensorInfo, bool) {
	f, ok := m.where[name]
	if !ok {
		return TensorInfo{}, false
	}
	return f.Info(name)
}

// Raw returns a read-only view of the named tensor's bytes; see File.Raw.
func (m *Model) Raw(name string) ([]byte, error) {
	f, ok := m.where[name]
	if !ok {
		return nil, fmt.Errorf("safetensors: model %s has no tensor named %q", m.dir, name)
	}
	return f.Raw(name)
}

// Float32 returns the named tensor converted to a new []float32; see
// File.Float32.
func (m *Model) Float32(name string) ([]float32, error) {
	f, ok := m.where[name]
	if !ok {
		return nil, fmt.Errorf("safetensors: model %s has no tensor named %q", m.dir, name)
	}
	return f.Float32(name)
}

// Int64 returns the named integer or boolean tensor as a new []int64; see
// File.Int64.
func (m *Model) Int64(name string) ([]int64, error) {
	f, ok := m.where[name]
	if !ok {
		return nil, fmt.Errorf("safetensors: model %s has no tensor named %q", m.dir, name)
	}
	return f.Int64(name)
}

// Metadata returns the __metadata__ of a single-file model, or, for a
// sharded one, the index's "metadata" object with each value rendered as
// JSON text when it is not a string (e.g. "total_size").
func (m *Model) Metadata() map[string]string {
	if m.indexMD == nil {
		if len(m.files) == 1 {
			return m.files[0].Metadata()
		}
		return nil
	}
	out := make(map[string]string, len(m.indexMD))
	for k, v := range m.indexMD {
		if s, ok := v.(string); ok {
			out[k] = s
			continue
		}
		b, _ := json.Marshal(v)
		out[k] = string(b)
	}
	return out
}

// Close unmaps every shard.
func (m *Model) Close() error {
	var errs []error
	for _, f := range m.files {
		errs = append(errs, f.Close())
	}
	return errors.Join(errs...)
}
