// Package httpfield owns the syntax checks of HTTP header fields (RFC 9110) that the
// handshake headers a caller or a secret store supplies must pass.
package httpfield

import "strings"

// ControlChar returns the first control character of a field value other than horizontal tab
// (0x00-0x08, 0x0A-0x1F, 0x7F): field values allow none of them, and line breaks or NULs
// would split or cut the handshake request.
func ControlChar(v string) (byte, bool) {
	for _, c := range []byte(v) {
		if c < 0x20 && c != '\t' || c == 0x7f {
			return c, true
		}
	}
	return 0, false
}

// ValidToken reports whether s is an RFC 9110 token (header names, subprotocols): visible
// ASCII without delimiters, so no control character, space or DEL.
func ValidToken(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}
