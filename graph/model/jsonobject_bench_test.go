package model

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// Session data goes out through MarshalGQL on every read of a session's
// data field, and comes in through UnmarshalGQL on login, register and
// updateSessionData.

const smallData = `{"theme":"dark","cart":[1,2,3],"prefs":{"lang":"en","big":123456789012345678901234567890,"f":1.5},"beta":true,"none":null}`

// largeData is about 15 KiB, near MaxDataBytes.
var largeData = func() string {
	var sb strings.Builder
	sb.WriteString(`{`)
	for i := range 150 {
		fmt.Fprintf(&sb, `"key%03d":{"n":%d,"s":"value number %d","a":[1,2.5,"x"]},`, i, i, i)
	}
	sb.WriteString(`"end":true}`)
	return sb.String()
}()

// decoded returns data as gqlgen hands a variable to UnmarshalGQL: decoded
// with UseNumber.
func decoded(b *testing.B, data string) map[string]any {
	b.Helper()
	dec := json.NewDecoder(strings.NewReader(data))
	dec.UseNumber()
	var v map[string]any
	if err := dec.Decode(&v); err != nil {
		b.Fatal(err)
	}
	return v
}

func BenchmarkJSONObjectMarshalGQL(b *testing.B) {
	for _, tc := range []struct{ name, data string }{{"small", smallData}, {"large", largeData}} {
		b.Run(tc.name, func(b *testing.B) {
			o := JSONObject(tc.data)
			var buf bytes.Buffer
			b.SetBytes(int64(len(tc.data)))
			b.ReportAllocs()
			for b.Loop() {
				buf.Reset()
				o.MarshalGQL(&buf)
			}
		})
	}
}

func BenchmarkJSONObjectUnmarshalGQL(b *testing.B) {
	for _, tc := range []struct{ name, data string }{{"small", smallData}, {"large", largeData}} {
		b.Run(tc.name, func(b *testing.B) {
			v := decoded(b, tc.data)
			b.SetBytes(int64(len(tc.data)))
			b.ReportAllocs()
			for b.Loop() {
				var o JSONObject
				if err := o.UnmarshalGQL(v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
