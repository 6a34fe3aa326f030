package model

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2/gqlerror"
)

func FuzzJSONObject(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1}`, `{"big":123456789012345678901234567890,"f":0.1}`, `{"n":[[1,[2]],[]]}`,
		`{"$x":1}`, `{"a.b":1}`, `{"a":{"b":{"c":{"d":{"e":{"f":{"g":{"h":{"i":{"j":{}}}}}}}}}}}`, `[1]`, `{"n":1e999}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		dec := json.NewDecoder(bytes.NewReader(input))
		dec.UseNumber() // as gqlgen decodes variables
		var v any
		if dec.Decode(&v) != nil {
			return
		}
		var o JSONObject
		if err := o.UnmarshalGQL(v); err != nil {
			var gerr *gqlerror.Error
			if !errors.As(err, &gerr) || gerr.Extensions["code"] != "BAD_USER_INPUT" || !strings.HasPrefix(gerr.Message, "data ") {
				t.Fatalf("unexpected error %#v", err)
			}
			return
		}
		if len(o) > MaxObjectBytes {
			t.Fatalf("accepted %d bytes", len(o))
		}
		var out bytes.Buffer
		o.MarshalGQL(&out)
		var back map[string]any
		d2 := json.NewDecoder(&out)
		d2.UseNumber()
		if err := d2.Decode(&back); err != nil {
			t.Fatalf("output %q is not a JSON object: %v", out.String(), err)
		}
		// Stable: what is read back and written again is the same text.
		var again JSONObject
		if err := again.UnmarshalGQL(back); err != nil || again != o {
			t.Fatalf("not stable: %q then %q (%v)", o, again, err)
		}
	})
}
