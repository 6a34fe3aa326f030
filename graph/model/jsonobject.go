// Package model holds the GraphQL types: the ones gqlgen generates, the
// JSONObject scalar, and the error codes clients see.
package model

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// Limits on JSON objects. Every JSONObject argument is within MaxObjectBytes
// and MaxDataDepth; session data is held to MaxDataBytes by the resolvers
// that store it (see Within). The larger bound is for WebAuthn credentials:
// an attestation statement may carry a certificate chain (x5c, with no
// count limit in the standard), a few KiB per certificate, and the
// credential's binary members grow by a third in base64url.
const (
	MaxObjectBytes = 32 << 10
	MaxDataBytes   = 16 << 10
	MaxDataDepth   = 10
)

// JSONObject is a JSON object held as compact JSON text, exactly as it is
// stored and as it is sent back: reads pass it through without decoding,
// and numbers keep every digit the client wrote. Storage gives a session
// without data an empty object, so none sent back is empty.
type JSONObject string

// UnmarshalGQL implements graphql.Unmarshaler. It accepts JSON objects
// within MaxObjectBytes and MaxDataDepth whose keys MongoDB can store, and
// reports anything else as CodeBadUserInput, calling the value "data".
func (o *JSONObject) UnmarshalGQL(v any) error { return o.unmarshal(v, "data") }

// UnmarshalGQLContext implements graphql.ContextUnmarshaler: UnmarshalGQL
// whose errors name the argument ("credential must be ...").
func (o *JSONObject) UnmarshalGQLContext(ctx context.Context, v any) error {
	subject := "data"
	if pc := graphql.GetPathContext(ctx); pc != nil && pc.Field != nil {
		subject = *pc.Field
	}
	return o.unmarshal(v, subject)
}

func (o *JSONObject) unmarshal(v any, subject string) error {
	m, ok := v.(map[string]any)
	if !ok {
		return refuse(subject, "must be a JSON object")
	}
	clean, err := normalize(m, 1)
	var why invalid
	if errors.As(err, &why) {
		return refuse(subject, string(why))
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(clean); err != nil {
		return refuse(subject, "is not valid JSON")
	}
	obj := JSONObject(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
	if err := obj.Within(subject, MaxObjectBytes); err != nil {
		return err
	}
	*o = obj
	return nil
}

// Within reports, as CodeBadUserInput naming subject, an object of more
// than max bytes of JSON. A nil object is within any limit.
func (o *JSONObject) Within(subject string, max int) error {
	if o != nil && len(*o) > max {
		return refuse(subject, fmt.Sprintf("must be at most %d bytes of JSON", max))
	}
	return nil
}

// String returns the JSON text, "" for nil: no data, which storage turns
// into an empty object.
func (o *JSONObject) String() string {
	if o == nil {
		return ""
	}
	return string(*o)
}

// MarshalGQL implements graphql.Marshaler.
func (o JSONObject) MarshalGQL(w io.Writer) { _, _ = io.WriteString(w, string(o)) }

// MarshalGQLContext implements graphql.ContextMarshaler, which gqlgen
// wants beside UnmarshalGQLContext: it is MarshalGQL.
func (o JSONObject) MarshalGQLContext(_ context.Context, w io.Writer) error {
	_, err := io.WriteString(w, string(o))
	return err
}

func normalize(v any, depth int) (any, error) {
	switch v := v.(type) {
	case map[string]any:
		if depth > MaxDataDepth {
			return nil, invalid(fmt.Sprintf("must be at most %d levels deep", MaxDataDepth))
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
			return nil, invalid(fmt.Sprintf("must be at most %d levels deep", MaxDataDepth))
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
		if err := checkNumber(string(v)); err != nil {
			return nil, err
		}
		return v, nil
	case int:
		return int64(v), nil
	case int32:
		return int64(v), nil
	case int64, string, bool, nil:
		return v, nil
	case float64:
		if math.IsInf(v, 0) || math.IsNaN(v) {
			return nil, invalid("numbers must be finite")
		}
		return v, nil
	default:
		return nil, invalid(fmt.Sprintf("has a value of unsupported type %T", v))
	}
}

// checkNumber accepts any JSON number that a float64 can approximate; the
// text itself is kept, so integers beyond 2^53 survive exactly.
func checkNumber(s string) error {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) || math.IsInf(f, 0) {
		return invalid("has a number out of range")
	}
	return nil
}

// checkKey refuses the keys MongoDB and FerretDB refuse to store.
func checkKey(k string) error {
	switch {
	case strings.HasPrefix(k, "$"):
		return invalid(fmt.Sprintf("key %.40q must not start with $", k))
	case strings.Contains(k, "."):
		return invalid(fmt.Sprintf("key %.40q must not contain a dot", k))
	case strings.ContainsRune(k, 0):
		return invalid("keys must not contain NUL")
	}
	return nil
}

// invalid is why a value is refused, without its subject.
type invalid string

func (i invalid) Error() string { return string(i) }

// refuse is the error a client sees for a refused value.
func refuse(subject, reason string) error {
	return &gqlerror.Error{
		Message:    subject + " " + reason,
		Extensions: map[string]any{"code": CodeBadUserInput},
	}
}
