package redisstream

import (
	"bufio"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
)

func read(s string) (Reply, error) { return ReadReply(bufio.NewReader(strings.NewReader(s))) }

func TestReadReply(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     Reply
	}{
		{"simple string", "+PONG\r\n", Reply{Kind: '+', Str: "PONG"}},
		{"error", "-ERR no such key\r\n", Reply{Kind: '-', Str: "ERR no such key"}},
		{"integer", ":42\r\n", Reply{Kind: ':', Int: 42}},
		{"negative integer", ":-7\r\n", Reply{Kind: ':', Int: -7}},
		{"bulk string", "$5\r\nhello\r\n", Reply{Kind: '$', Str: "hello"}},
		{"bulk string with CRLF inside", "$4\r\na\r\nb\r\n", Reply{Kind: '$', Str: "a\r\nb"}},
		{"empty bulk string", "$0\r\n\r\n", Reply{Kind: '$', Str: ""}},
		{"null bulk string", "$-1\r\n", Reply{Kind: '$', Null: true}},
		{"null array", "*-1\r\n", Reply{Kind: '*', Null: true}},
		{"empty array", "*0\r\n", Reply{Kind: '*', Elems: []Reply{}}},
		{"nested array", "*2\r\n:1\r\n*1\r\n$1\r\nx\r\n", Reply{Kind: '*', Elems: []Reply{
			{Kind: ':', Int: 1}, {Kind: '*', Elems: []Reply{{Kind: '$', Str: "x"}}}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := read(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestReadReplyRejectsMalformed(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     error
	}{
		{"unknown type", "?x\r\n", ErrProtocol},
		{"LF without CR", "+OK\n", ErrProtocol},
		{"empty line", "\r\n", ErrProtocol},
		{"bad integer", ":12a\r\n", ErrProtocol},
		{"bad length", "$x\r\n", ErrProtocol},
		{"negative length", "$-2\r\n", ErrProtocol},
		{"length above the limit", "$999999999999\r\n", ErrProtocol},
		{"array above the limit", "*999999999999\r\n", ErrProtocol},
		{"bulk without CRLF", "$2\r\nabXY", ErrProtocol},
		{"too deep", strings.Repeat("*1\r\n", maxDepth+2) + ":1\r\n", ErrProtocol},
		{"truncated bulk", "$10\r\nabc", io.ErrUnexpectedEOF},
		{"truncated line", "+OK", io.ErrUnexpectedEOF},
		{"truncated array", "*3\r\n:1\r\n", io.EOF},
		{"nothing", "", io.EOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := read(tc.in); !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
		})
	}
}

func TestEntries(t *testing.T) {
	in := "*2\r\n" +
		"*2\r\n$15\r\n1700000000123-0\r\n*4\r\n$4\r\ndata\r\n$2\r\n{}\r\n$8\r\nmetadata\r\n$2\r\n{}\r\n" +
		"*2\r\n$15\r\n1700000000124-7\r\n*2\r\n$4\r\ndata\r\n$3\r\n[1]\r\n"
	r, err := read(in)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Entries(r)
	if err != nil {
		t.Fatal(err)
	}
	want := []Entry{
		{ID: "1700000000123-0", Fields: map[string]string{"data": "{}", "metadata": "{}"}},
		{ID: "1700000000124-7", Fields: map[string]string{"data": "[1]"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	at, err := got[0].Time()
	if err != nil || !at.Equal(time.UnixMilli(1700000000123)) {
		t.Fatalf("Time() = %v, %v", at, err)
	}
	for _, bad := range []string{
		":1\r\n",                  // not an array
		"*1\r\n:1\r\n",            // entry not an array
		"*1\r\n*1\r\n$1\r\nx\r\n", // entry without fields
		"*1\r\n*2\r\n$1\r\nx\r\n*1\r\n$1\r\na\r\n",       // odd field items
		"*1\r\n*2\r\n$1\r\nx\r\n*2\r\n:1\r\n$1\r\na\r\n", // field name not a bulk string
	} {
		r, err := read(bad)
		if err != nil {
			t.Fatalf("%q: %v", bad, err)
		}
		if _, err := Entries(r); !errors.Is(err, ErrProtocol) {
			t.Errorf("Entries(%q) error %v, want a protocol error", bad, err)
		}
	}
}

// FuzzReadReply: no input makes the reader panic or allocate from a claimed length alone, and
// a reply it accepts converts to entries or is refused with an error.
func FuzzReadReply(f *testing.F) {
	for _, s := range []string{"+PONG\r\n", ":1\r\n", "$3\r\nabc\r\n", "$-1\r\n", "*-1\r\n",
		"*1\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$4\r\ndata\r\n$2\r\n{}\r\n", "$999999999\r\n", "-ERR x\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bufio.NewReader(strings.NewReader(string(in)))
		for range 4 {
			rep, err := ReadReply(r)
			if err != nil {
				return
			}
			if ents, err := Entries(rep); err == nil {
				for _, e := range ents {
					_, _ = e.Time()
				}
			}
		}
	})
}
