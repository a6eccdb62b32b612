package storetest

import (
	"testing"
	"time"

	"github.com/mcpauth/mcpauth/internal/store"
)

func testClientsSeen(t *testing.T, open opener) {
	t.Run("upsert keeps FirstSeen", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		must(t, "RecordClientSeen", s.RecordClientSeen(ctx, store.ClientSeen{
			ClientID: clientA, FirstSeen: t0(), LastSeen: t0(), LastResult: "ok", Tier: "open", Fingerprint: "sha256:fp1",
		}))
		next := store.ClientSeen{
			ClientID: clientA, FirstSeen: at(time.Hour), LastSeen: at(time.Hour), LastResult: "fetch_failed", Tier: "verified", Fingerprint: "sha256:fp2",
		}
		must(t, "RecordClientSeen again", s.RecordClientSeen(ctx, next))
		got, err := s.ListClientsSeen(ctx)
		must(t, "ListClientsSeen", err)
		next.FirstSeen = t0()
		if d := diff([]store.ClientSeen{next}, got); d != "" {
			t.Errorf("ListClientsSeen mismatch (-want +got):\n%s", d)
		}
		if len(got) == 1 {
			checkUTC(t, "ListClientsSeen", got[0].FirstSeen, got[0].LastSeen)
		}
	})
	t.Run("UpdateClientSeen only updates a client recorded before", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		failed := store.ClientSeen{ClientID: clientB, FirstSeen: at(time.Hour), LastSeen: at(time.Hour), LastResult: "fetch_failed", Tier: "unverified"}
		must(t, "UpdateClientSeen", s.UpdateClientSeen(ctx, failed))
		got, err := s.ListClientsSeen(ctx)
		must(t, "ListClientsSeen", err)
		if len(got) != 0 {
			t.Fatalf("after UpdateClientSeen of an unknown client, ListClientsSeen = %+v, want none", got)
		}
		must(t, "RecordClientSeen", s.RecordClientSeen(ctx, store.ClientSeen{
			ClientID: clientB, FirstSeen: t0(), LastSeen: t0(), LastResult: store.SeenOK, Tier: "open", Fingerprint: "sha256:fp",
		}))
		must(t, "UpdateClientSeen", s.UpdateClientSeen(ctx, failed))
		got, err = s.ListClientsSeen(ctx)
		must(t, "ListClientsSeen", err)
		failed.FirstSeen = t0()
		if d := diff([]store.ClientSeen{failed}, got); d != "" {
			t.Errorf("UpdateClientSeen of a recorded client (-want +got):\n%s", d)
		}
	})
	t.Run("zero FirstSeen on the first call means LastSeen", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		must(t, "RecordClientSeen", s.RecordClientSeen(ctx, store.ClientSeen{ClientID: clientA, LastSeen: at(time.Minute), LastResult: "ok"}))
		got, err := s.ListClientsSeen(ctx)
		must(t, "ListClientsSeen", err)
		want := []store.ClientSeen{{ClientID: clientA, FirstSeen: at(time.Minute), LastSeen: at(time.Minute), LastResult: "ok"}}
		if d := diff(want, got); d != "" {
			t.Errorf("ListClientsSeen mismatch (-want +got):\n%s", d)
		}
	})
	t.Run("ordered by client ID, Users counts distinct consenting users", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		clientC := "https://c.example/cimd.json"
		for _, c := range []string{clientC, clientB, clientA} {
			must(t, "RecordClientSeen", s.RecordClientSeen(ctx, store.ClientSeen{
				ClientID: c, FirstSeen: t0(), LastSeen: t0(), LastResult: "ok", Users: 99, // Users is ignored
			}))
		}
		for _, k := range [][2]string{{"u1", resource1}, {"u1", resource2}, {"u2", resource1}} {
			must(t, "PutConsent", s.PutConsent(ctx, store.Consent{UserID: k[0], ClientID: clientA, Resource: k[1], CreatedAt: t0()}))
		}
		must(t, "PutConsent", s.PutConsent(ctx, store.Consent{UserID: "u3", ClientID: clientC, Resource: resource1, CreatedAt: t0()}))
		got, err := s.ListClientsSeen(ctx)
		must(t, "ListClientsSeen", err)
		seen := func(id string, users int) store.ClientSeen {
			return store.ClientSeen{ClientID: id, FirstSeen: t0(), LastSeen: t0(), LastResult: "ok", Users: users}
		}
		want := []store.ClientSeen{seen(clientC, 1), seen(clientA, 2), seen(clientB, 0)}
		if d := diff(want, got); d != "" {
			t.Errorf("ListClientsSeen mismatch (-want +got):\n%s", d)
		}
	})
}

func testBlocks(t *testing.T, open opener) {
	t.Run("put, list ordered by pattern, replace, delete", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		got, err := s.ListBlocks(ctx)
		must(t, "ListBlocks on an empty store", err)
		if len(got) != 0 {
			t.Fatalf("ListBlocks on an empty store = %v, want none", got)
		}
		blocks := []store.Block{
			{Pattern: "https://evil.example/cimd.json", Reason: "phishing", CreatedAt: t0()},
			{Pattern: "*.evil.example", Reason: "", CreatedAt: at(time.Minute)},
			{Pattern: "bad.example", Reason: "abuse report 42", CreatedAt: at(2 * time.Minute)},
		}
		for _, b := range blocks {
			must(t, "PutBlock", s.PutBlock(ctx, b))
		}
		got, err = s.ListBlocks(ctx)
		must(t, "ListBlocks", err)
		if d := diff([]store.Block{blocks[1], blocks[2], blocks[0]}, got); d != "" {
			t.Errorf("ListBlocks mismatch (-want +got):\n%s", d)
		}
		checkUTC(t, "ListBlocks", got[0].CreatedAt)

		replaced := store.Block{Pattern: "bad.example", Reason: "still abusive", CreatedAt: at(time.Hour)}
		must(t, "PutBlock again", s.PutBlock(ctx, replaced))
		must(t, "DeleteBlock", s.DeleteBlock(ctx, "*.evil.example"))
		got, err = s.ListBlocks(ctx)
		must(t, "ListBlocks", err)
		if d := diff([]store.Block{replaced, blocks[0]}, got); d != "" {
			t.Errorf("ListBlocks after replace and delete mismatch (-want +got):\n%s", d)
		}
		check(t, "DeleteBlock again", s.DeleteBlock(ctx, "*.evil.example"), store.ErrNotFound)
		check(t, "DeleteBlock unknown", s.DeleteBlock(ctx, "never.example"), store.ErrNotFound)
	})
}

func testDCRClients(t *testing.T, open opener) {
	reg := func(id string, created time.Time) store.DCRClient {
		return store.DCRClient{
			ClientID:     id,
			Metadata:     []byte(`{"client_name":"Tool","redirect_uris":["http://127.0.0.1/cb"]}`),
			MetadataHash: "sha256:meta-1",
			SourceIP:     "192.0.2.10",
			CreatedAt:    created,
			ExpiresAt:    created.Add(day),
		}
	}
	t.Run("I2 round trip", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		c := reg("dcr-1", t0())
		c.SecretHash = "sha256:secret"
		must(t, "CreateDCRClient", s.CreateDCRClient(ctx, c))
		got, err := s.GetDCRClient(ctx, "dcr-1")
		must(t, "GetDCRClient", err)
		if d := diff(c, got); d != "" {
			t.Errorf("GetDCRClient mismatch (-want +got):\n%s", d)
		}
		check(t, "CreateDCRClient again", s.CreateDCRClient(ctx, c), store.ErrConflict)
		_, err = s.GetDCRClient(ctx, "dcr-unknown")
		check(t, "GetDCRClient unknown", err, store.ErrNotFound)
		check(t, "TouchDCRClient unknown", s.TouchDCRClient(ctx, "dcr-unknown", t0()), store.ErrNotFound)
	})
	t.Run("I5 dedup finds a live registration from the same source", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		c := reg("dcr-1", t0())
		must(t, "CreateDCRClient", s.CreateDCRClient(ctx, c))
		got, err := s.FindDCRClient(ctx, c.MetadataHash, c.SourceIP, at(time.Hour))
		must(t, "FindDCRClient", err)
		if d := diff(c, got); d != "" {
			t.Errorf("FindDCRClient mismatch (-want +got):\n%s", d)
		}
		for _, k := range [][2]string{{c.MetadataHash, "192.0.2.11"}, {"sha256:meta-2", c.SourceIP}} {
			_, err := s.FindDCRClient(ctx, k[0], k[1], at(time.Hour))
			check(t, "FindDCRClient of another source or metadata", err, store.ErrNotFound)
		}
		_, err = s.FindDCRClient(ctx, c.MetadataHash, c.SourceIP, c.ExpiresAt)
		check(t, "FindDCRClient of an unused registration at ExpiresAt", err, store.ErrNotFound)

		must(t, "TouchDCRClient", s.TouchDCRClient(ctx, "dcr-1", at(2*time.Hour)))
		got, err = s.FindDCRClient(ctx, c.MetadataHash, c.SourceIP, at(30*day))
		must(t, "FindDCRClient of a used registration past ExpiresAt", err)
		c.LastUsedAt = at(2 * time.Hour)
		if d := diff(c, got); d != "" {
			t.Errorf("FindDCRClient mismatch (-want +got):\n%s", d)
		}
	})
	t.Run("I5 dedup returns the newest registration", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		older, newer := reg("dcr-b", t0()), reg("dcr-a", at(time.Minute))
		must(t, "CreateDCRClient", s.CreateDCRClient(ctx, older))
		must(t, "CreateDCRClient", s.CreateDCRClient(ctx, newer))
		got, err := s.FindDCRClient(ctx, older.MetadataHash, older.SourceIP, at(time.Hour))
		must(t, "FindDCRClient", err)
		if got.ClientID != newer.ClientID {
			t.Errorf("FindDCRClient = %q, want the newest %q", got.ClientID, newer.ClientID)
		}
	})
	t.Run("I5 count covers every stored registration", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		n, err := s.CountDCRClients(ctx)
		must(t, "CountDCRClients", err)
		if n != 0 {
			t.Errorf("CountDCRClients on an empty store = %d, want 0", n)
		}
		for i, id := range []string{"dcr-1", "dcr-2", "dcr-3"} {
			must(t, "CreateDCRClient", s.CreateDCRClient(ctx, reg(id, at(time.Duration(i)*day))))
		}
		n, err = s.CountDCRClients(ctx)
		must(t, "CountDCRClients", err)
		if n != 3 {
			t.Errorf("CountDCRClients = %d, want 3", n)
		}
	})
}
