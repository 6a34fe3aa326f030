package metrics

import (
	"fmt"
	"testing"
)

// Operation names come from clients; they must not grow the label set
// without bound.
func TestOperationLabelIsBounded(t *testing.T) {
	m := New(func() int64 { return 0 })
	for i := range maxOperations {
		if got, want := m.label(fmt.Sprint("Op", i)), fmt.Sprint("Op", i); got != want {
			t.Fatalf("label %d: got %q, want %q", i, got, want)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"Op0", "Op0"},         // known names keep their label
		{"NewOne", "other"},    // past the bound
		{"", "anonymous"},      // unnamed operations
		{"bad name!", "other"}, // not a GraphQL name
		{string(make([]byte, 100)), "other"},
	} {
		if got := m.label(tc.in); got != tc.want {
			t.Errorf("label(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
