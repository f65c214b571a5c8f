package labtest

import "image"

// ColouredColumns counts the pixel columns of a chart in which something
// saturated is drawn — the series lines; grids, axes and text are grey,
// and a fault's pale shading is below the threshold. A chart with data
// draws its lines across much of its width; an empty one has only its
// legend's short samples (a few dozen columns), which "has several
// colours" cannot tell apart from a chart.
func ColouredColumns(img image.Image) int {
	b := img.Bounds()
	n := 0
	for x := b.Min.X; x < b.Max.X; x++ {
		for y := b.Min.Y; y < b.Max.Y; y++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			hi, lo := max(r, g, bl)>>8, min(r, g, bl)>>8
			if hi-lo >= 64 {
				n++
				break
			}
		}
	}
	return n
}
