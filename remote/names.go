package remote

import (
	"fmt"
	"strings"
)

// MaxNameLen is the longest entity name Synapse accepts.
const MaxNameLen = 256

// ValidateName checks name against Synapse's entity name rules
// (NameValidation): after trimming surrounding whitespace, 1 to 256
// characters from ASCII letters, digits, and , _ . space - + ( ) '.
// The error is an *Error of kind ErrInvalid with Synapse's own message.
// Note that synfs additionally refuses names that change when trimmed,
// because a file called "a " would come back as "a".
func ValidateName(name string) error {
	t := strings.TrimSpace(name)
	msg := NameProblem(t)
	if msg == "" && t != name {
		msg = fmt.Sprintf("Invalid Name: '%s'. Names may not begin or end with whitespace", name)
	}
	if msg == "" {
		return nil
	}
	return &Error{Op: "name", Status: 400, Reason: msg, Kind: ErrInvalid}
}

// NameProblem returns Synapse's 400 message for an already trimmed name, or
// "" when Synapse accepts it. The emulator and the client share it.
func NameProblem(t string) string {
	if t == "" {
		return "Name cannot be only whitespace or empty string"
	}
	if len(t) > MaxNameLen {
		return "Name length cannot be longer than 256 characters."
	}
	for i := 0; i < len(t); i++ {
		if !nameByte(t[i]) {
			return fmt.Sprintf("Invalid Name: '%s'. Names may only contain: letters, numbers, spaces, underscores, hyphens, periods, plus signs, apostrophes, and parentheses", t)
		}
	}
	return ""
}

func nameByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte(",_. -+()'", c) >= 0
}
