package daprstack

import (
	"bytes"
	"net"
	"strconv"
	"testing"
)

// The ports FreePorts hands out are distinct, free to bind, and outside the kernel's ephemeral
// range, where outgoing connections and binds to port 0 take theirs.
func TestFreePortsAreDistinctBindableAndNotEphemeral(t *testing.T) {
	lo, hi := portRange()
	for _, n := range []int{1, 7, 30} {
		ports, err := FreePorts(n)
		if err != nil {
			t.Fatal(err)
		}
		if len(ports) != n {
			t.Fatalf("FreePorts(%d) returned %d ports", n, len(ports))
		}
		seen := map[int]bool{}
		for _, p := range ports {
			if seen[p] {
				t.Fatalf("FreePorts(%d) returned port %d twice: %v", n, p, ports)
			}
			seen[p] = true
			if hi > lo && (p < lo || p >= hi) {
				t.Errorf("port %d is outside [%d, %d)", p, lo, hi)
			}
			l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
			if err != nil {
				t.Fatalf("port %d from FreePorts cannot be bound: %v", p, err)
			}
			l.Close()
		}
	}
}

// A port that is taken is never handed out.
func TestFreePortsSkipsTakenPorts(t *testing.T) {
	lo, hi := portRange()
	if hi-lo <= 0 {
		t.Skip("no port range below the ephemeral range on this machine: FreePorts uses the kernel's choice")
	}
	// Take every port of a small window and make the draw land there often by asking for many.
	held := map[int]bool{}
	for range 200 {
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(lo+len(held))))
		if err == nil {
			defer l.Close()
			held[l.Addr().(*net.TCPAddr).Port] = true
		}
		if len(held) == 200 {
			break
		}
	}
	ports, err := FreePorts(200)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ports {
		if held[p] {
			t.Fatalf("FreePorts returned port %d, which a listener of this test holds", p)
		}
	}
}

func TestPrefixWriterPrefixesWholeLines(t *testing.T) {
	tests := []struct {
		name   string
		writes []string
		want   string
	}{
		{"one line", []string{"hello\n"}, "[p] hello\n"},
		{"split line", []string{"hel", "lo\nwor", "ld\n"}, "[p] hello\n[p] world\n"},
		{"unfinished line waits", []string{"a\nb"}, "[p] a\n"},
		{"empty line", []string{"\n"}, "[p] \n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			w := &prefixWriter{prefix: "[p] ", w: &out}
			for _, s := range tt.writes {
				if n, err := w.Write([]byte(s)); err != nil || n != len(s) {
					t.Fatalf("Write(%q) = %d, %v", s, n, err)
				}
			}
			if out.String() != tt.want {
				t.Errorf("got %q, want %q", out.String(), tt.want)
			}
		})
	}
}
