package remote

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
)

// Annotation value types (Annotations v2).
const (
	TypeString    = "STRING"
	TypeLong      = "LONG"
	TypeDouble    = "DOUBLE"
	TypeTimestamp = "TIMESTAMP_MS"
	TypeBoolean   = "BOOLEAN"
)

// Synapse's annotation limits (AnnotationsV2Utils and StringValueListValidator
// in Synapse-Repository-Services).
const (
	MaxAnnotationKeys      = 100     // keys per entity
	MaxAnnotationValues    = 1000    // values per key
	MaxAnnotationString    = 1000    // characters (UTF-16 units) per STRING value
	MaxAnnotationListChars = 100_000 // characters of all STRING values of one key
)

// Annotation limit errors. Both also match ErrInvalid, because Synapse
// answers them with 400.
var (
	ErrTooManyAnnotations = errors.New("too many annotation keys")
	ErrAnnotationTooLarge = errors.New("annotation value too large")
)

var annotationKeyRE = regexp.MustCompile(`^[a-zA-Z0-9,_.]+$`)

// ValidateAnnotationKey checks key against Synapse's rule: letters, digits,
// '_', '.' and ',' only, and not the reserved _accessRequirementIds. The
// error matches ErrInvalid.
func ValidateAnnotationKey(key string) error {
	if !annotationKeyRE.MatchString(key) {
		return fmt.Errorf("%w: invalid annotation name %q: annotation names may only contain letters, numbers, '_', '.' and ','", ErrInvalid, key)
	}
	if strings.EqualFold(key, "_accessRequirementIds") {
		return fmt.Errorf("%w: invalid annotation name %q: the annotation name is a system reserved annotation", ErrInvalid, key)
	}
	return nil
}

// ValidateAnnotations checks values against the limits Synapse enforces, so
// that a caller can refuse a change before sending it. Errors match
// ErrInvalid and, for the limits, ErrTooManyAnnotations or
// ErrAnnotationTooLarge.
func ValidateAnnotations(values map[string]AnnotationValue) error {
	if len(values) > MaxAnnotationKeys {
		return fmt.Errorf("%w: %w: an entity may have at most %d annotation keys", ErrInvalid, ErrTooManyAnnotations, MaxAnnotationKeys)
	}
	for _, k := range slices.Sorted(maps.Keys(values)) {
		if err := ValidateAnnotationKey(k); err != nil {
			return err
		}
		v := values[k]
		if len(v.Values) > MaxAnnotationValues {
			return fmt.Errorf("%w: %w: annotation %q has %d values, at most %d are allowed", ErrInvalid, ErrAnnotationTooLarge, k, len(v.Values), MaxAnnotationValues)
		}
		if v.Type != TypeString {
			continue
		}
		total := 0
		for _, s := range v.Values {
			n := len(utf16.Encode([]rune(s)))
			if n > MaxAnnotationString {
				return fmt.Errorf("%w: %w: a single string value of annotation %q cannot exceed %d characters", ErrInvalid, ErrAnnotationTooLarge, k, MaxAnnotationString)
			}
			total += n
			if total > MaxAnnotationListChars {
				return fmt.Errorf("%w: %w: the string values of annotation %q cannot exceed %d characters together", ErrInvalid, ErrAnnotationTooLarge, k, MaxAnnotationListChars)
			}
		}
	}
	return nil
}

// UpdateAnnotations changes entity id's annotations by read-modify-write:
// it reads them (or starts from cur, when not nil), lets change edit the
// values, checks the result with ValidateAnnotations and writes it with the
// etag that was read. When Synapse answers 412 (someone else changed the
// entity meanwhile), it reads again and re-applies change to the fresh
// values, so a concurrent change to other keys is kept, up to 5 times. A
// change that leaves the values as they were writes nothing. It returns the
// annotations as stored.
func UpdateAnnotations(ctx context.Context, c Client, id string, cur *Annotations, change func(map[string]AnnotationValue) error) (*Annotations, error) {
	const attempts = 5
	for i := 0; ; i++ {
		if cur == nil {
			var err error
			if cur, err = c.Annotations(ctx, id); err != nil {
				return nil, err
			}
		}
		next := &Annotations{Etag: cur.Etag, Values: cloneValues(cur.Values)}
		if err := change(next.Values); err != nil {
			return nil, err
		}
		if EqualAnnotations(cur.Values, next.Values) {
			return cur, nil
		}
		if err := ValidateAnnotations(next.Values); err != nil {
			return nil, err
		}
		err := c.SetAnnotations(ctx, id, next)
		if err == nil {
			return next, nil
		}
		if !errors.Is(err, ErrStale) || i+1 >= attempts {
			return nil, err
		}
		cur = nil
	}
}

func cloneValues(m map[string]AnnotationValue) map[string]AnnotationValue {
	out := make(map[string]AnnotationValue, len(m))
	for k, v := range m {
		out[k] = AnnotationValue{Type: v.Type, Values: slices.Clone(v.Values)}
	}
	return out
}

// EqualAnnotations reports whether a and b hold the same keys, types and
// values.
func EqualAnnotations(a, b map[string]AnnotationValue) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || !v.Equal(w) {
			return false
		}
	}
	return true
}

// Equal reports whether v and w have the same type and values.
func (v AnnotationValue) Equal(w AnnotationValue) bool {
	return v.Type == w.Type && slices.Equal(v.Values, w.Values)
}

// # The typing rule
//
// ParseAnnotation and FormatAnnotation convert between an annotation and
// one line of text: the value of an extended attribute user.KEY, or a cell
// of a `synapse manifest`/`synapse sync` TSV. The rule is the one the
// official Python client applies to manifest cells
// (_convert_cell_in_manifest_to_python_types, then to_synapse_annotations):
//
//   - Surrounding spaces are dropped. Text in square brackets is a list,
//     split at commas that are not inside double quotes; each item is
//     trimmed.
//   - Each item, in this order: an ISO 8601 date or date-time
//     (2024-01-31, 2024-01-31T10:00:00Z, 2024-01-31 10:00:00+02:00, with
//     optional fractional seconds; no offset means UTC) is a TIMESTAMP_MS;
//     true or false in any case is a BOOLEAN; a Python integer literal
//     (-12, 1_000, 0x1f) is a LONG; a Python float literal (1.5, 1e3, .5)
//     is a DOUBLE; text in double or single quotes is a STRING without the
//     quotes; anything else is a STRING as written.
//   - A list whose items all have one type has that type; a mixed list is a
//     STRING list of the items' texts.
//
// synfs adds one thing: NaN, Infinity and -Infinity are DOUBLEs, so that
// every DOUBLE Synapse can hold reads back as one.
//
// FormatAnnotation writes values so that ParseAnnotation gives them back
// exactly: a STRING that would read as another type, or that holds a comma
// or quote inside a list, is written in double quotes; a DOUBLE always has
// a '.' or an exponent; a TIMESTAMP_MS is written as UTC with milliseconds
// (2024-01-31T10:00:00.000Z); a value with more than one item is written as
// a list, [a, b].

// ParseAnnotation types text by the rule above.
func ParseAnnotation(text string) AnnotationValue {
	text = strings.TrimSpace(text)
	items := []string{text}
	if len(text) >= 2 && text[0] == '[' && text[len(text)-1] == ']' {
		items = splitOutsideQuotes(text[1 : len(text)-1])
	}
	typ := ""
	vals := make([]string, len(items))
	raws := make([]string, len(items))
	for i, it := range items {
		t, v := parseItem(it)
		vals[i] = v
		raws[i] = v
		if t != TypeString {
			raws[i] = it
		}
		switch {
		case i == 0:
			typ = t
		case typ != t:
			typ = ""
		}
	}
	if typ == "" {
		return AnnotationValue{Type: TypeString, Values: raws}
	}
	return AnnotationValue{Type: typ, Values: vals}
}

// splitOutsideQuotes splits s at commas that are not inside double quotes
// and trims each item.
func splitOutsideQuotes(s string) []string {
	var out []string
	in := false
	start := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if in {
				i++ // an escaped character inside quotes
			}
		case '"':
			in = !in
		case ',':
			if !in {
				out = append(out, strings.TrimSpace(s[start:i]))
				start = i + 1
			}
		}
	}
	return append(out, strings.TrimSpace(s[start:]))
}

// parseItem types one item and returns the value as Synapse stores it.
func parseItem(s string) (typ, value string) {
	if ms, ok := parseTimestamp(s); ok {
		return TypeTimestamp, strconv.FormatInt(ms, 10)
	}
	switch strings.ToLower(s) {
	case "true", "false":
		return TypeBoolean, strings.ToLower(s)
	}
	switch s {
	case "NaN", "Infinity", "-Infinity":
		return TypeDouble, s
	}
	if n, ok := parsePyInt(s); ok {
		return TypeLong, n
	}
	if f, ok := parsePyFloat(s); ok {
		return TypeDouble, f
	}
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		if u, err := strconv.Unquote(s); err == nil {
			return TypeString, u
		}
	}
	if len(s) >= 2 && s[0] == '\'' && s[len(s)-1] == '\'' && !strings.ContainsAny(s[1:len(s)-1], `'\`) {
		return TypeString, s[1 : len(s)-1]
	}
	return TypeString, s
}

var (
	pyDecimal  = regexp.MustCompile(`^[+-]?(0(_?0)*|[1-9](_?[0-9])*)$`)
	pyPrefixed = regexp.MustCompile(`^[+-]?0([xX](_?[0-9a-fA-F])+|[oO](_?[0-7])+|[bB](_?[01])+)$`)
	pyFloat    = regexp.MustCompile(`^[+-]?(([0-9](_?[0-9])*)?\.[0-9](_?[0-9])*([eE][+-]?[0-9](_?[0-9])*)?|[0-9](_?[0-9])*\.([eE][+-]?[0-9](_?[0-9])*)?|[0-9](_?[0-9])*[eE][+-]?[0-9](_?[0-9])*)$`)
)

// parsePyInt accepts what Python's literal_eval reads as an int that fits a
// Java long, and returns it in decimal.
func parsePyInt(s string) (string, bool) {
	if !pyDecimal.MatchString(s) && !pyPrefixed.MatchString(s) {
		return "", false
	}
	n, err := strconv.ParseInt(s, 0, 64)
	if err != nil {
		return "", false
	}
	return strconv.FormatInt(n, 10), true
}

// parsePyFloat accepts a Python float literal and returns it as written
// (underscores dropped), which is what Synapse stores.
func parsePyFloat(s string) (string, bool) {
	if !pyFloat.MatchString(s) {
		return "", false
	}
	s = strings.ReplaceAll(s, "_", "")
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) {
		return "", false
	}
	return s, true
}

var timestampLayouts = []string{
	"2006-01-02",
	"2006-01-02T15:04",
	"2006-01-02T15:04:05",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02T15:04Z07:00",
	"2006-01-02T15:04:05Z07:00",
	"2006-01-02T15:04:05.999999999Z07:00",
}

// parseTimestamp reads an ISO 8601 date or date-time ('T' or ' ' between
// date and time); no offset means UTC.
func parseTimestamp(s string) (int64, bool) {
	if len(s) < 10 || s[4] != '-' || s[7] != '-' {
		return 0, false
	}
	if len(s) > 10 && s[10] == ' ' {
		s = s[:10] + "T" + s[11:]
	}
	for _, l := range timestampLayouts {
		if t, err := time.ParseInLocation(l, s, time.UTC); err == nil {
			return t.UnixMilli(), true
		}
	}
	return 0, false
}

// FormatAnnotation writes v so that ParseAnnotation reads it back exactly.
func FormatAnnotation(v AnnotationValue) string {
	if len(v.Values) == 0 {
		return "[]"
	}
	items := make([]string, len(v.Values))
	for i, s := range v.Values {
		items[i] = formatItem(v.Type, s, len(v.Values) > 1)
	}
	if len(items) == 1 {
		return items[0]
	}
	return "[" + strings.Join(items, ", ") + "]"
}

func formatItem(typ, s string, inList bool) string {
	switch typ {
	case TypeTimestamp:
		if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
			return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z")
		}
	case TypeDouble:
		if t, _ := parseItem(s); t == TypeDouble {
			return s
		}
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			out := strconv.FormatFloat(f, 'g', -1, 64)
			if t, _ := parseItem(out); t != TypeDouble {
				out = strconv.FormatFloat(f, 'f', 1, 64)
			}
			return out
		}
	case TypeLong:
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return strconv.FormatInt(n, 10)
		}
	case TypeBoolean:
		if b, err := strconv.ParseBool(s); err == nil {
			return strconv.FormatBool(b)
		}
	case TypeString:
		t, v := parseItem(s)
		plain := t == TypeString && v == s && s == strings.TrimSpace(s) && s != "" &&
			!(len(s) >= 2 && s[0] == '[' && s[len(s)-1] == ']')
		if inList && strings.ContainsAny(s, `,"`) {
			plain = false
		}
		if plain {
			return s
		}
	}
	return strconv.Quote(s)
}
