package train

import (
	"errors"
	"fmt"

	"github.com/mlbuild/mlbuild/ml/tensor"
)

// Logits runs ids through the model as one sequence, with its adapters and
// without dropout (the adapted model that PEFT's PeftModel computes in
// eval mode), and returns the logits of every position
// ([len(ids)*VocabSize], row-major).
func (m *Model) Logits(ids []int) ([]float32, error) {
	if len(ids) == 0 {
		return nil, errors.New("train: Logits needs at least one token")
	}
	if err := m.Config.Check(len(ids)); err != nil {
		return nil, err
	}
	targets := make([]int, len(ids))
	for i, id := range ids {
		if id < 0 || id >= m.Config.VocabSize {
			return nil, fmt.Errorf("train: token id %d is outside the vocabulary of %d tokens", id, m.Config.VocabSize)
		}
		targets[i] = tensor.IgnoreIndex
	}
	ps, _, _ := m.forward(&Batch{Rows: 1, Len: len(ids), IDs: ids, Targets: targets, Real: len(ids)}, false, true, 0)
	out := make([]float32, ps.logits.Len())
	m.be.Read(ps.logits, out)
	return out, nil
}
