package gateway

import (
	"testing"
	"time"
)

func TestSessionBindings(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, s *sessions)
	}{
		{"bound to its owner", func(t *testing.T, s *sessions) {
			s.bind("a", "alice")
			if !s.allowed("a", "alice") || s.allowed("a", "mallory") || s.allowed("b", "alice") {
				t.Error("wrong answer")
			}
		}},
		{"another owner cannot take a live session", func(t *testing.T, s *sessions) {
			s.bind("a", "alice")
			if s.bind("a", "mallory") || !s.allowed("a", "alice") {
				t.Error("rebound")
			}
		}},
		{"idle sessions expire", func(t *testing.T, s *sessions) {
			s.bind("a", "alice")
			now = now.Add(2 * time.Hour)
			if s.allowed("a", "alice") || s.len() != 0 {
				t.Error("expired session allowed or kept")
			}
		}},
		{"use keeps a session alive", func(t *testing.T, s *sessions) {
			s.bind("a", "alice")
			for range 3 {
				now = now.Add(50 * time.Minute)
				if !s.allowed("a", "alice") {
					t.Fatal("session in use expired")
				}
			}
		}},
		{"the least recently used goes when full", func(t *testing.T, s *sessions) {
			s.bind("a", "alice")
			s.bind("b", "bob")
			s.bind("c", "carol")
			s.allowed("a", "alice") // b is now the least recently used
			s.bind("d", "dave")
			if s.len() != 3 || s.allowed("b", "bob") || !s.allowed("a", "alice") || !s.allowed("d", "dave") {
				t.Errorf("len %d", s.len())
			}
		}},
		{"forget", func(t *testing.T, s *sessions) {
			s.bind("a", "alice")
			s.forget("a")
			s.forget("never")
			if s.allowed("a", "alice") {
				t.Error("forgotten session allowed")
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.run(t, newSessions(time.Hour, 3, clock))
		})
	}
}
