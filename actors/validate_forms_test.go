package actors

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Ensure every control character but horizontal tab is refused in header values, names and
// subprotocols, with INVALID_ARGUMENT naming the header but never the value.
func TestValidateRefusesEveryControlCharacter(t *testing.T) {
	for c := range 0x80 {
		if c >= 0x20 && c < 0x7f {
			continue
		}
		ch := string(rune(c))
		t.Run(fmt.Sprintf("0x%02X", c), func(t *testing.T) {
			a := ConnectArgs{URL: "ws://h/", Headers: map[string]string{"X-Token": "secret" + ch + "value"}}
			e := a.Validate()
			if c == '\t' {
				assert.Nil(t, e)
			} else if assert.NotNil(t, e) {
				assert.Equal(t, CodeInvalidArgument, e.Code)
				assert.Contains(t, e.Message, `"X-Token"`)
				assert.Contains(t, e.Message, fmt.Sprintf("0x%02X", c))
				assert.NotContains(t, e.Message, "secret")
			}
			a = ConnectArgs{URL: "ws://h/", Headers: map[string]string{"X" + ch: "v"}}
			assert.NotNil(t, a.Validate(), "header name")
			a = ConnectArgs{URL: "ws://h/", Subprotocols: []string{"chat" + ch}}
			assert.NotNil(t, a.Validate(), "subprotocol")
		})
	}
}

// Ensure a refused port says what is accepted.
func TestValidateURLPortMessage(t *testing.T) {
	for _, raw := range []string{"ws://h:0/", "ws://h:65536/", "ws://h:080/"} {
		e := ValidateURL(raw)
		require.NotNil(t, e, raw)
		assert.Equal(t, CodeInvalidArgument, e.Code)
		assert.Contains(t, e.Message, "1 to 65535", raw)
	}
	e := ValidateURL("ws://user:secret@h:/")
	require.NotNil(t, e)
	assert.Contains(t, e.Message, "port")
	assert.NotContains(t, e.Message, "secret")
}

// FuzzValidateURLPort: whatever a caller sends, an accepted URL has no port or a canonical
// decimal port from 1 to 65535, and a host without ':' unless it is an IPv6 literal.
func FuzzValidateURLPort(f *testing.F) {
	for _, s := range []string{"ws://h:80/", "ws://h:/", "ws://h:080/", "ws://h:0/", "ws://h:65536/", "ws://[::1]:1/", "ws://h:80:80/", "ws://[fe80::1%25eth0]/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if ValidateURL(raw) != nil {
			return
		}
		u, err := url.Parse(raw)
		require.NoError(t, err)
		if strings.HasSuffix(u.Host, ":") {
			t.Fatalf("accepted %q with an empty port", raw)
		}
		if p := u.Port(); p != "" {
			n, err := strconv.Atoi(p)
			require.NoError(t, err)
			require.True(t, n >= 1 && n <= 65535 && strconv.Itoa(n) == p, "port %q", p)
		}
		require.False(t, !strings.HasPrefix(u.Host, "[") && strings.Contains(u.Hostname(), ":"), "host %q", u.Host)
	})
}
