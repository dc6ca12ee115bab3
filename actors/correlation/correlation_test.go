package correlation

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func fixedPrefix() [PrefixLen]byte {
	var p [PrefixLen]byte
	copy(p[:], "0123456789abcdef")
	return p
}

func TestOutbound(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		msg     string
		binary  bool
		wantKey Key
		wantErr bool
	}{
		{"auto with id", Config{Mode: ModeAuto}, `{"id":7,"method":"x"}`, false, "n:7", false},
		{"auto with string id", Config{Mode: ModeAuto}, `{"id":"a"}`, false, "s:a", false},
		{"auto without id", Config{Mode: ModeAuto}, `{"method":"x"}`, false, "", false},
		{"auto plain text", Config{Mode: ModeAuto}, `hello`, false, "", false},
		{"auto binary", Config{Mode: ModeAuto}, `{"id":1}`, true, "", false},
		{"auto nested field", Config{Mode: ModeAuto, Field: "params.req"}, `{"params":{"req":"r1"}}`, false, "s:r1", false},
		{"auto id is object", Config{Mode: ModeAuto}, `{"id":{"a":1}}`, false, "", false},
		{"json_field with id", Config{Mode: ModeJSONField}, `{"id":"x"}`, false, "s:x", false},
		{"json_field without id", Config{Mode: ModeJSONField}, `{"x":1}`, false, "", true},
		{"json_field not json", Config{Mode: ModeJSONField}, `nope`, false, "", true},
		{"next", Config{Mode: ModeNext}, `{"id":1}`, false, "", false},
		{"prefix", Config{Mode: ModePrefix}, `hi`, false, Key("p:0123456789abcdef"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg.Normalize()
			require.NoError(t, cfg.Validate())
			frame, key, err := cfg.Outbound([]byte(tt.msg), tt.binary, fixedPrefix)
			if tt.wantErr {
				assert.ErrorIs(t, err, ErrNoID)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.wantKey, key)
			if cfg.Mode == ModePrefix {
				assert.Equal(t, "0123456789abcdefhi", string(frame))
			} else {
				assert.Equal(t, tt.msg, string(frame))
			}
		})
	}
}

func TestInbound(t *testing.T) {
	tests := []struct {
		name        string
		cfg         Config
		frame       string
		wantKey     Key
		wantPayload string
	}{
		{"auto reply by id", Config{Mode: ModeAuto}, `{"id":7,"result":1}`, "n:7", `{"id":7,"result":1}`},
		{"auto push", Config{Mode: ModeAuto}, `{"event":"tick"}`, "", `{"event":"tick"}`},
		{"prefix reply", Config{Mode: ModePrefix}, "0123456789abcdefok", Key("p:0123456789abcdef"), "ok"},
		{"prefix short frame", Config{Mode: ModePrefix}, "short", "", "short"},
		{"next", Config{Mode: ModeNext}, `{"id":1}`, "", `{"id":1}`},
		{"number forms differ", Config{Mode: ModeAuto}, `{"id":7.0}`, "n:7.0", `{"id":7.0}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, payload := tt.cfg.Normalize().Inbound([]byte(tt.frame), false)
			assert.Equal(t, tt.wantKey, key)
			assert.Equal(t, tt.wantPayload, string(payload))
		})
	}
}

func TestParseModeAndValidate(t *testing.T) {
	for _, s := range []string{"auto", "json_field", "prefix", "next"} {
		m, err := ParseMode(s)
		require.NoError(t, err)
		assert.Equal(t, s, m.String())
	}
	_, err := ParseMode("bogus")
	assert.Error(t, err)
	assert.Error(t, Config{Mode: ModeAuto, Field: "a..b"}.Validate())
	assert.Error(t, Config{Mode: 99}.Validate())
	assert.NoError(t, Config{Mode: ModePrefix}.Validate())
	assert.True(t, Config{Mode: ModeAuto}.TakesUnclaimed())
	assert.False(t, Config{Mode: ModeJSONField}.TakesUnclaimed())
}

// FuzzInbound: reading any inbound frame never panics, and a key found in a frame is the key
// an outbound message with that same body would wait for.
func FuzzInbound(f *testing.F) {
	for _, s := range []string{`{"id":1}`, `{"id":"x","a":{"b":2}}`, `{"id":`, `[1,2]`, ``, `{"id":{"id":1}}`, "0123456789abcdef-tail", "\xff\xfe"} {
		f.Add([]byte(s), "id", uint8(ModeAuto))
	}
	f.Fuzz(func(t *testing.T, frame []byte, field string, mode uint8) {
		cfg := Config{Mode: Mode(mode%4 + 1), Field: field}.Normalize()
		if cfg.Validate() != nil {
			return
		}
		key, payload := cfg.Inbound(frame, false)
		if cfg.Mode == ModePrefix {
			if key != "" && !bytes.Equal(append([]byte(string(key)[2:]), payload...), frame) {
				t.Fatalf("prefix split lost bytes")
			}
			return
		}
		if key != "" && cfg.Mode != ModeNext {
			_, out, err := cfg.Outbound(frame, false, fixedPrefix)
			if err != nil || out != key {
				t.Fatalf("inbound key %q but outbound key %q (err %v)", key, out, err)
			}
		}
	})
}
