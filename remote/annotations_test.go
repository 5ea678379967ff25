package remote

import (
	"errors"
	"strings"
	"testing"
)

func TestParseAnnotation(t *testing.T) {
	for _, c := range []struct {
		in   string
		typ  string
		vals []string
	}{
		{"rnaSeq", TypeString, []string{"rnaSeq"}},
		{"  rnaSeq ", TypeString, []string{"rnaSeq"}},
		{"42", TypeLong, []string{"42"}},
		{"-7", TypeLong, []string{"-7"}},
		{"1_000", TypeLong, []string{"1000"}},
		{"0x1f", TypeLong, []string{"31"}},
		{"007", TypeString, []string{"007"}}, // Python refuses leading zeros
		{"1.5", TypeDouble, []string{"1.5"}},
		{"1e3", TypeDouble, []string{"1e3"}},
		{".5", TypeDouble, []string{".5"}},
		{"NaN", TypeDouble, []string{"NaN"}},
		{"inf", TypeString, []string{"inf"}},
		{"True", TypeBoolean, []string{"true"}},
		{"FALSE", TypeBoolean, []string{"false"}},
		{"2024-01-31", TypeTimestamp, []string{"1706659200000"}},
		{"2024-01-31T10:00:00Z", TypeTimestamp, []string{"1706695200000"}},
		{"2024-01-31 12:00:00+02:00", TypeTimestamp, []string{"1706695200000"}},
		{"2024-01-31T10:00:00.250Z", TypeTimestamp, []string{"1706695200250"}},
		{`"42"`, TypeString, []string{"42"}},
		{`'true'`, TypeString, []string{"true"}},
		{"[a, b]", TypeString, []string{"a", "b"}},
		{"[1, 2, 3]", TypeLong, []string{"1", "2", "3"}},
		{"[1.5, 2.0]", TypeDouble, []string{"1.5", "2.0"}},
		{"[true,False]", TypeBoolean, []string{"true", "false"}},
		{`[a, "b, c"]`, TypeString, []string{"a", "b, c"}},
		{"[1, a]", TypeString, []string{"1", "a"}},
		{"[1]", TypeLong, []string{"1"}},
		{"", TypeString, []string{""}},
		{"a,b", TypeString, []string{"a,b"}},
	} {
		got := ParseAnnotation(c.in)
		if !got.Equal(AnnotationValue{Type: c.typ, Values: c.vals}) {
			t.Errorf("ParseAnnotation(%q): got %v %q, want %v %q", c.in, got.Type, got.Values, c.typ, c.vals)
		}
	}
}

func TestFormatAnnotationRoundTrip(t *testing.T) {
	for _, v := range []AnnotationValue{
		{TypeString, []string{"rnaSeq"}},
		{TypeString, []string{"42"}},
		{TypeString, []string{"true"}},
		{TypeString, []string{"2024-01-31"}},
		{TypeString, []string{"[not a list]"}},
		{TypeString, []string{" padded "}},
		{TypeString, []string{""}},
		{TypeString, []string{`say "hi"`}},
		{TypeString, []string{"a, b", `q"uote`, "plain"}},
		{TypeString, []string{"a,b"}},
		{TypeLong, []string{"42"}},
		{TypeLong, []string{"1", "-2"}},
		{TypeDouble, []string{"1.5"}},
		{TypeDouble, []string{"2.0", "1e+20"}},
		{TypeDouble, []string{"NaN", "Infinity", "-Infinity"}},
		{TypeBoolean, []string{"true", "false"}},
		{TypeTimestamp, []string{"1706695200250"}},
		{TypeTimestamp, []string{"0", "1706695200000"}},
	} {
		text := FormatAnnotation(v)
		if got := ParseAnnotation(text); !got.Equal(v) {
			t.Errorf("%v %q: formatted as %q, read back as %v %q", v.Type, v.Values, text, got.Type, got.Values)
		}
	}
	// A DOUBLE stored without a point still reads back as a DOUBLE.
	if got := ParseAnnotation(FormatAnnotation(AnnotationValue{TypeDouble, []string{"3"}})); got.Type != TypeDouble {
		t.Errorf("DOUBLE 3: read back as %v", got.Type)
	}
}

func FuzzAnnotationRoundTrip(f *testing.F) {
	for _, s := range []string{"a", "[a, b]", `"x,y"`, "1", "1.5", "true", "2024-01-31", `[",", "\""]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v := ParseAnnotation(s)
		text := FormatAnnotation(v)
		if got := ParseAnnotation(text); !got.Equal(v) {
			t.Errorf("%q parsed as %v %q, formatted %q, read back as %v %q", s, v.Type, v.Values, text, got.Type, got.Values)
		}
	})
}

func TestValidateAnnotations(t *testing.T) {
	ok := map[string]AnnotationValue{"assay": {TypeString, []string{"rnaSeq"}}}
	if err := ValidateAnnotations(ok); err != nil {
		t.Fatalf("valid annotations: %v", err)
	}
	for _, k := range []string{"bad key", "", "a/b", "_accessRequirementIds"} {
		if err := ValidateAnnotationKey(k); !errors.Is(err, ErrInvalid) {
			t.Errorf("key %q: got %v, want ErrInvalid", k, err)
		}
	}
	many := map[string]AnnotationValue{}
	for i := range MaxAnnotationKeys + 1 {
		many["k"+strings.Repeat("x", i)] = AnnotationValue{TypeLong, []string{"1"}}
	}
	if err := ValidateAnnotations(many); !errors.Is(err, ErrTooManyAnnotations) || !errors.Is(err, ErrInvalid) {
		t.Errorf("101 keys: got %v, want ErrTooManyAnnotations", err)
	}
	long := map[string]AnnotationValue{"s": {TypeString, []string{strings.Repeat("x", MaxAnnotationString+1)}}}
	if err := ValidateAnnotations(long); !errors.Is(err, ErrAnnotationTooLarge) {
		t.Errorf("long string: got %v, want ErrAnnotationTooLarge", err)
	}
	vals := make([]string, MaxAnnotationValues+1)
	for i := range vals {
		vals[i] = "1"
	}
	if err := ValidateAnnotations(map[string]AnnotationValue{"n": {TypeLong, vals}}); !errors.Is(err, ErrAnnotationTooLarge) {
		t.Errorf("1001 values: got %v, want ErrAnnotationTooLarge", err)
	}
	sum := make([]string, 101)
	for i := range sum {
		sum[i] = strings.Repeat("y", 1000)
	}
	if err := ValidateAnnotations(map[string]AnnotationValue{"s": {TypeString, sum}}); !errors.Is(err, ErrAnnotationTooLarge) {
		t.Errorf("101,000 characters: got %v, want ErrAnnotationTooLarge", err)
	}
}
