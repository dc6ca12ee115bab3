package correlation

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// jsonKeyRef is the straightforward decoder the scanner replaced: the reference it must match.
func jsonKeyRef(data []byte, path string) (Key, bool) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] != '{' {
		return "", false
	}
	raw := json.RawMessage(data)
	for _, seg := range strings.Split(path, ".") {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil {
			return "", false
		}
		v, ok := obj[seg]
		if !ok {
			return "", false
		}
		raw = bytes.TrimSpace(v)
	}
	if len(raw) == 0 {
		return "", false
	}
	switch c := raw[0]; {
	case c == '"':
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return "", false
		}
		return Key("s:" + s), true
	case c == '-' || (c >= '0' && c <= '9'):
		var n json.Number
		if json.Unmarshal(raw, &n) != nil {
			return "", false
		}
		return Key("n:" + n.String()), true
	}
	return "", false
}

func TestJSONKeyMatchesReference(t *testing.T) {
	cases := []struct{ data, path string }{
		{`{"id":1}`, "id"},
		{` { "id" : "a\"b" , "x":[1,{"id":2}] } `, "id"},
		{`{"id":1,"id":2}`, "id"},
		{`{"a":{"b":{"c":-1.5e3}}}`, "a.b.c"},
		{`{"a":{"b":"x"}}`, "a.c"},
		{`{"i\u0064":"esc"}`, "id"},
		{`{"id":null}`, "id"},
		{`{"id":true}`, "id"},
		{`{"id":[1]}`, "id"},
		{`{"id":"\u00e9\n"}`, "id"},
		{`{"x":"}\"{","id":7}`, "id"},
		{`{"id":1`, "id"},
		{`[{"id":1}]`, "id"},
	}
	for _, c := range cases {
		gotK, gotOK := jsonKey([]byte(c.data), c.path)
		wantK, wantOK := jsonKeyRef([]byte(c.data), c.path)
		if gotK != wantK || gotOK != wantOK {
			t.Errorf("jsonKey(%s, %s) = %q %v, reference %q %v", c.data, c.path, gotK, gotOK, wantK, wantOK)
		}
	}
}

// FuzzJSONKey: the scanner finds exactly what decoding the frame would find, for any frame.
func FuzzJSONKey(f *testing.F) {
	for _, s := range []string{`{"id":1}`, `{"id":"x","a":{"b":2}}`, `{"id":1,"id":"2"}`, `{"i\u0064":3}`, `{"a":[{"id":1}],"id":-0.5}`, `{`} {
		f.Add([]byte(s), "id")
		f.Add([]byte(s), "a.b")
	}
	f.Fuzz(func(t *testing.T, data []byte, path string) {
		if (Config{Mode: ModeJSONField, Field: path}).Validate() != nil {
			return
		}
		gotK, gotOK := jsonKey(data, path)
		wantK, wantOK := jsonKeyRef(data, path)
		if gotK != wantK || gotOK != wantOK {
			t.Fatalf("jsonKey(%q, %q) = %q %v, reference %q %v", data, path, gotK, gotOK, wantK, wantOK)
		}
	})
}

func BenchmarkJSONKey(b *testing.B) {
	frame := []byte(`{"e":"trade","s":"BTCUSDT","p":"64000.10","q":"0.01","T":1732900000000,"id":"r-1234"}`)
	b.ReportAllocs()
	for b.Loop() {
		jsonKey(frame, "id")
	}
}
