package model

import (
	"errors"
	"io"
	"strconv"
	"time"

	"github.com/99designs/gqlgen/graphql"
)

// timeLayout is RFC 3339 in UTC with exactly three fractional digits, the
// precision the database keeps: every Time reads the same way.
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

// MarshalTime writes the Time scalar.
func MarshalTime(t time.Time) graphql.Marshaler {
	return graphql.WriterFunc(func(w io.Writer) {
		_, _ = io.WriteString(w, strconv.Quote(t.UTC().Format(timeLayout)))
	})
}

// UnmarshalTime reads the Time scalar: any RFC 3339 time.
func UnmarshalTime(v any) (time.Time, error) {
	s, ok := v.(string)
	if !ok {
		return time.Time{}, errors.New("time must be an RFC 3339 string")
	}
	return time.Parse(time.RFC3339Nano, s)
}
