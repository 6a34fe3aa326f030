// Package model holds the GraphQL types: the ones gqlgen generates and the
// JSONObject scalar.
package model

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/vektah/gqlparser/v2/gqlerror"
)

// Limits on session data.
const (
	MaxDataBytes = 16 << 10
	MaxDataDepth = 10
)

// JSONObject is a JSON object with plain Go values: nil, bool, string,
// int64, float64, []any and map[string]any. Numbers without a fraction or
// exponent that fit in 64 bits are int64, so what a client writes is what
// it reads back.
type JSONObject map[string]any

// UnmarshalGQL implements graphql.Unmarshaler. It accepts JSON objects
// within MaxDataBytes and MaxDataDepth whose keys MongoDB can store, and
// reports anything else as BAD_USER_INPUT.
func (o *JSONObject) UnmarshalGQL(v any) error {
	m, ok := v.(map[string]any)
	if !ok {
		return badData("must be a JSON object")
	}
	clean, err := normalize(m, 1)
	if err != nil {
		return err
	}
	obj := clean.(map[string]any)
	var buf bytes.Buffer
	if err := encode(&buf, obj); err != nil {
		return badData("is not valid JSON")
	}
	if buf.Len()-1 > MaxDataBytes { // Encode adds a newline
		return badData(fmt.Sprintf("must be at most %d bytes of JSON", MaxDataBytes))
	}
	*o = obj
	return nil
}

// MarshalGQL implements graphql.Marshaler.
func (o JSONObject) MarshalGQL(w io.Writer) {
	if o == nil {
		o = JSONObject{}
	}
	var buf bytes.Buffer
	if err := encode(&buf, map[string]any(o)); err != nil {
		// Only values gatehouse stored get here, and they all encode.
		panic(fmt.Sprintf("model: marshal JSONObject: %v", err))
	}
	_, _ = w.Write(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
}

func encode(buf *bytes.Buffer, v any) error {
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

func normalize(v any, depth int) (any, error) {
	switch v := v.(type) {
	case map[string]any:
		if depth > MaxDataDepth {
			return nil, badData(fmt.Sprintf("must be at most %d levels deep", MaxDataDepth))
		}
		out := make(map[string]any, len(v))
		for k, x := range v {
			if err := checkKey(k); err != nil {
				return nil, err
			}
			c, err := normalize(x, depth+1)
			if err != nil {
				return nil, err
			}
			out[k] = c
		}
		return out, nil
	case []any:
		if depth > MaxDataDepth {
			return nil, badData(fmt.Sprintf("must be at most %d levels deep", MaxDataDepth))
		}
		out := make([]any, len(v))
		for i, x := range v {
			c, err := normalize(x, depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	case json.Number:
		return number(string(v))
	case int:
		return int64(v), nil
	case int32:
		return int64(v), nil
	case int64, string, bool, nil:
		return v, nil
	case float64:
		if math.IsInf(v, 0) || math.IsNaN(v) {
			return nil, badData("numbers must be finite")
		}
		return v, nil
	default:
		return nil, badData(fmt.Sprintf("has a value of unsupported type %T", v))
	}
}

func number(s string) (any, error) {
	if !strings.ContainsAny(s, ".eE") {
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return i, nil
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) {
		return nil, badData("has a number out of range")
	}
	return f, nil
}

// checkKey refuses the keys MongoDB and FerretDB refuse to store.
func checkKey(k string) error {
	switch {
	case strings.HasPrefix(k, "$"):
		return badData(fmt.Sprintf("key %.40q must not start with $", k))
	case strings.Contains(k, "."):
		return badData(fmt.Sprintf("key %.40q must not contain a dot", k))
	case strings.ContainsRune(k, 0):
		return badData("keys must not contain NUL")
	}
	return nil
}

func badData(reason string) error {
	return &gqlerror.Error{
		Message:    "data " + reason,
		Extensions: map[string]any{"code": "BAD_USER_INPUT"},
	}
}
