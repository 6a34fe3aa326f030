package confusables

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/text/unicode/norm"
)

func TestSkeleton(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		// The look-alikes of issue 16.
		{"alice", "alice"},
		{"\u0430lice", "alice"}, // Cyrillic а
		{"\u0251lice", "alice"}, // Latin alpha ɑ
		{"al\u0131ce", "alice"}, // dotless ı
		{"al\u0456ce", "alice"}, // Cyrillic і
		// TS #39's own: mixed- and whole-script confusables of "paypal"
		// and "scope", which all map to the same skeleton.
		{"\U0001D52D\U0001D4B6\u1EFF\U0001D561\U0001D552\u2113", "paypal"}, // 𝔭𝒶ỿ𝕡𝕒ℓ
		{"\u03C1\u237A\u0443\U0001D4C5\U0001D482\u05DF", "paypal"},         // ρ⍺у𝓅𝒂ן
		{"\u0455\u0441\u043E\u0440\u0435", "scope"},                        // ѕсоре, all Cyrillic
		{"s\u03F2o\u0440e", "scope"},                                       // sϲoрe, Greek and Cyrillic
		// ASCII has confusables of its own; the prototype is not always
		// the lower-case letter.
		{"I", "l"},
		{"1", "l"},
		{"|", "l"},
		{"0", "O"},
		{"m", "rn"},
		// Not folded: case differences and diacritics stay.
		{"payPal", "payPal"},
		{"p\u00E0yp\u0105l", "pa\u0300ypa\u0328l"},
		// NFD before and after the mapping.
		{"\u00E9", "e\u0301"},
		{"e\u0301", "e\u0301"},
		// Default ignorable code points are removed.
		{"a\u200Db", "ab"}, // zero width joiner
		{"a\u00ADb", "ab"}, // soft hyphen
		{"a\uFE0Fb", "ab"}, // variation selector
		{"", ""},
	}
	for _, tt := range tests {
		if got := Skeleton(tt.in); got != tt.want {
			t.Errorf("Skeleton(%+q) = %+q, want %+q", tt.in, got, tt.want)
		}
	}
}

// TestTableMatchesFile reads confusables.txt again and checks every line
// against the generated table, so that a table edited by hand, or a file
// replaced without `go generate`, fails.
func TestTableMatchesFile(t *testing.T) {
	f, err := os.Open("confusables.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "# Version: ") && !strings.HasSuffix(sc.Text(), " "+Version) {
			t.Errorf("file header %q, table Version %q", sc.Text(), Version)
		}
		data, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Split(data, ";")
		if len(fields) != 3 {
			continue
		}
		from := parse(t, fields[0])
		want := parse(t, fields[1])
		if got, ok := prototype([]rune(from)[0]); !ok || got != want {
			t.Errorf("prototype(%U) = %+q, %v; file says %+q", []rune(from)[0], got, ok, want)
		}
		n++
	}
	if n != len(prototypes) || n < 6000 {
		t.Errorf("file has %d mappings, table %d", n, len(prototypes))
	}
	for i := 1; i < len(prototypes); i++ {
		if prototypes[i-1].r >= prototypes[i].r {
			t.Fatalf("table not sorted at %d: %U, %U", i, prototypes[i-1].r, prototypes[i].r)
		}
	}
}

func parse(t *testing.T, hex string) string {
	t.Helper()
	var b strings.Builder
	for _, h := range strings.Fields(hex) {
		v, err := strconv.ParseUint(h, 16, 32)
		if err != nil {
			t.Fatalf("bad code point %q", h)
		}
		b.WriteRune(rune(v))
	}
	return b.String()
}

func TestSkeletonIsNFD(t *testing.T) {
	for _, m := range prototypes {
		s := Skeleton(string(m.r))
		if !norm.NFD.IsNormalString(s) {
			t.Errorf("Skeleton(%U) = %+q, not NFD", m.r, s)
		}
	}
}

func BenchmarkSkeleton(b *testing.B) {
	for b.Loop() {
		Skeleton("\u0430lice.sm\u0456th_42")
	}
}
