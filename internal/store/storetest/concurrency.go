package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/mcpauth/mcpauth/internal/store"
)

// racers is how many goroutines compete for one single-use value.
const racers = 20

func testConcurrency(t *testing.T, open opener) {
	t.Run("F2 concurrent redemptions of one code: exactly one wins", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		must(t, "CreateCode", s.CreateCode(ctx, newCode("code-1", "u1", clientA, "fam-1")))
		errs := race(racers, func(i int) error {
			rt := newRefresh(fmt.Sprintf("rt-%d", i), "fam-1", at(time.Minute))
			return s.RedeemCode(ctx, "code-1", at(time.Minute), newFamily("fam-1", "u1", clientA), &rt)
		})
		winner := checkOneWinner(t, errs, store.ErrAlreadyUsed)
		checkOnlyWinnerToken(t, s, "rt-%d", winner)
	})
	t.Run("F8 concurrent rotations of one refresh token: exactly one wins", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		grant(t, s, "u1", clientA, "fam-1", "rt-0")
		errs := race(racers, func(i int) error {
			return s.RotateRefreshToken(ctx, "rt-0", at(time.Hour), newRefresh(fmt.Sprintf("rt-next-%d", i), "fam-1", at(time.Hour)))
		})
		winner := checkOneWinner(t, errs, store.ErrAlreadyUsed)
		checkOnlyWinnerToken(t, s, "rt-next-%d", winner)
	})
	t.Run("concurrent consumptions of one auth request: exactly one wins", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		must(t, "PutAuthRequest", s.PutAuthRequest(ctx, store.AuthRequest{ID: "req-1", Data: []byte("{}"), ExpiresAt: at(time.Hour)}))
		errs := race(racers, func(int) error {
			_, err := s.ConsumeAuthRequest(ctx, "req-1", t0())
			return err
		})
		checkOneWinner(t, errs, store.ErrNotFound)
	})
	t.Run("F6 concurrent records of one jti: exactly one wins", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		errs := race(racers, func(int) error { return s.RecordJTI(ctx, clientA, "jti-1", at(time.Minute)) })
		checkOneWinner(t, errs, store.ErrConflict)
	})
	t.Run("concurrent rate hits each count once", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		counts := make([]int, racers)
		errs := race(racers, func(i int) error {
			var err error
			counts[i], err = s.RateHit(ctx, "register:192.0.2.1", time.Hour, t0())
			return err
		})
		if ok := count(errs, nil); ok != racers {
			t.Fatalf("%d of %d rate hits succeeded: %v", ok, racers, errs)
		}
		slices.Sort(counts)
		for i, c := range counts {
			if c != i+1 {
				t.Fatalf("rate hit counts = %v, want 1..%d each once", counts, racers)
			}
		}
	})
}

// checkOneWinner fails the test unless exactly one of errs is nil and every
// other is lost; it returns the winner's index.
func checkOneWinner(t *testing.T, errs []error, lost error) int {
	t.Helper()
	if ok, lo := count(errs, nil), count(errs, lost); ok != 1 || lo != len(errs)-1 {
		t.Fatalf("%d succeeded and %d failed with %v, want 1 and %d: %v", ok, lo, lost, len(errs)-1, errs)
	}
	return slices.Index(errs, nil)
}

// checkOnlyWinnerToken fails the test unless, of the refresh tokens named
// by format and 0..racers-1, only the winner's was stored.
func checkOnlyWinnerToken(t *testing.T, s store.Store, format string, winner int) {
	t.Helper()
	for i := range racers {
		_, _, err := s.GetRefreshToken(t.Context(), fmt.Sprintf(format, i))
		if i == winner {
			must(t, "GetRefreshToken of the winner", err)
		} else {
			check(t, "GetRefreshToken of a loser", err, store.ErrNotFound)
		}
	}
}
