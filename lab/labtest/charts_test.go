package labtest

import (
	"image"
	"image/color"
	"testing"
)

// A grid with axes, grey text and a legend sample is not a chart with data;
// a line across it is.
func TestColouredColumnsTellsALineFromAGrid(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 640, 230))
	for x := range 640 {
		for y := range 230 {
			c := color.RGBA{0xff, 0xff, 0xff, 0xff}
			switch {
			case x%40 == 0 || y%40 == 0:
				c = color.RGBA{0xe0, 0xe0, 0xe0, 0xff} // grid
			case x == 50 || y == 200:
				c = color.RGBA{0, 0, 0, 0xff} // axes
			case x > 300 && x < 400:
				c = color.RGBA{0xff, 0xd6, 0xd6, 0xff} // a fault's shading
			}
			img.Set(x, y, c)
		}
	}
	for x := 560; x < 580; x++ {
		img.Set(x, 10, color.RGBA{0x1f, 0x77, 0xb4, 0xff}) // the legend's sample
	}
	if n := ColouredColumns(img); n > 30 {
		t.Fatalf("an empty chart has %d coloured columns", n)
	}
	// What the old check ("at least 4 colours") would have passed.
	colours := map[color.Color]bool{}
	for x := range 640 {
		for y := range 230 {
			colours[img.At(x, y)] = true
		}
	}
	if len(colours) < 4 {
		t.Fatalf("the empty chart has %d colours; it is meant to fool a colour count", len(colours))
	}
	for x := 60; x < 600; x++ {
		img.Set(x, 100+x%7, color.RGBA{0xdd, 0x4b, 0x4c, 0xff}) // an antialiased red line
	}
	if n := ColouredColumns(img); n < 540 {
		t.Fatalf("a chart with a line across has only %d coloured columns", n)
	}
}
