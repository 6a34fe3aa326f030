package auth

import (
	"fmt"
	"strings"

	"github.com/boombuler/barcode/qr"
)

// qrCodeSVG draws text as a QR code in an SVG document: one square per dark
// module of the encoder's grid, inside the four-module quiet zone that
// scanners need. Error correction M survives a smudge or a glare.
func qrCodeSVG(text string) (string, error) {
	code, err := qr.Encode(text, qr.M, qr.Auto)
	if err != nil {
		return "", fmt.Errorf("auth: qr code: %w", err)
	}
	const quiet = 4
	n := code.Bounds().Dx()
	var path strings.Builder
	for y := range n {
		for x := range n {
			if r, _, _, _ := code.At(x, y).RGBA(); r == 0 {
				fmt.Fprintf(&path, "M%d %dh1v1h-1z", x+quiet, y+quiet)
			}
		}
	}
	size := n + 2*quiet
	return fmt.Sprintf(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" shape-rendering="crispEdges">`+
		`<rect width="%d" height="%d" fill="#fff"/><path fill="#000" d="%s"/></svg>`,
		size, size, size*4, size*4, size, size, path.String()), nil
}
