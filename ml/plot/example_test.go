package plot_test

import (
	"bytes"
	"fmt"
	"image/png"

	"github.com/mlbuild/mlbuild/ml/plot"
)

// A training run's loss curves: the training loss at every step and the
// validation loss every 50 steps (few enough points to be marked).
func ExampleLossCurvesPNG() {
	train := plot.Series{Name: "train"}
	val := plot.Series{Name: "validation"}
	for step := 0; step <= 200; step++ {
		loss := 3/(1+float64(step)/40) + 0.4
		train.X, train.Y = append(train.X, float64(step)), append(train.Y, loss)
		if step%50 == 0 {
			val.X, val.Y = append(val.X, float64(step)), append(val.Y, loss+0.2)
		}
	}
	b, err := plot.LossCurvesPNG("fine-tuning", train, val)
	if err != nil {
		fmt.Println(err)
		return
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(img.Bounds().Dx(), "x", img.Bounds().Dy())
	// Output: 605 x 378
}
