package remote

import (
	"errors"
	"strings"
	"testing"
)

// FuzzValidateName checks ValidateName against the rule written out
// plainly: 1 to 256 bytes, all from Synapse's set, no surrounding
// whitespace; a refusal is ErrInvalid with Synapse's message.
func FuzzValidateName(f *testing.F) {
	for _, s := range []string{"a.txt", "", " ", "a ", " a", "data (1).csv", "it's+ok-_,", "a/b", "a\x00b", "é.txt",
		strings.Repeat("x", 256), strings.Repeat("x", 257), "\xff\xfe", "~$lock", "#x#", "a\tb", "\u00a0a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := ValidateName(name)
		want := len(name) >= 1 && len(name) <= MaxNameLen && name[0] != ' ' && name[len(name)-1] != ' '
		for i := 0; want && i < len(name); i++ {
			c := name[i]
			want = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte(",_. -+()'", c) >= 0
		}
		if (err == nil) != want {
			t.Fatalf("ValidateName(%q) = %v, want accepted=%v", name, err, want)
		}
		if err != nil {
			var re *Error
			if !errors.As(err, &re) || !errors.Is(err, ErrInvalid) || re.Status != 400 || re.Reason == "" {
				t.Fatalf("ValidateName(%q) = %#v, want a 400 ErrInvalid with a reason", name, err)
			}
		}
	})
}
