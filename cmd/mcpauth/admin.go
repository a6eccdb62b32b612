package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/mcpauth/mcpauth/cimd"
	"github.com/mcpauth/mcpauth/internal/authserver"
	"github.com/mcpauth/mcpauth/internal/store"
	sqlstore "github.com/mcpauth/mcpauth/internal/store/sql"
	"github.com/mcpauth/mcpauth/internal/token"
)

const usersUsage = `Usage:
  mcpauth users add NAME --password-stdin [--data DIR]
  mcpauth users list [--data DIR]
  mcpauth users remove NAME [--data DIR]

Manages the local accounts that sign in on the login page.`

const clientsUsage = `Usage:
  mcpauth clients list [--data DIR]
  mcpauth clients block URL|HOST|*.DOMAIN [--reason TEXT] [--data DIR]
  mcpauth clients unblock URL|HOST|*.DOMAIN [--data DIR]

Lists the CIMD clients the server has seen and blocks abusive ones. A block
reaches a running server within 5 seconds: new authorizations and refreshes
are refused and the client's tokens become inactive at introspection. Access
tokens checked as JWTs stay valid until they expire; block prints both bounds.`

const keysUsage = `Usage:
  mcpauth keys rotate [--key-encryption-key-file FILE] [--data DIR]
  mcpauth keys list [--key-encryption-key-file FILE] [--data DIR]
  mcpauth keys rewrap [--from FILE] [--to FILE] [--data DIR]

Signing keys: rotate promotes the published next key and publishes a new one;
tokens signed by the old key stay verifiable until they expire.

rewrap re-encrypts every stored private key in one transaction: from the key
encryption key in --from (absent: the keys are stored unencrypted) to the one
in --to (absent: store them unencrypted). Each key is checked to decrypt
before anything is written. Stop every serve first, then start them with
--key-encryption-key-file set to the --to file.`

// groupHelp handles a command group called without a subcommand (usage,
// exit 2) or with help (usage, exit 0). done reports whether it did.
func groupHelp(args []string, usage string, stdout, stderr io.Writer) (done bool, err error) {
	switch {
	case len(args) == 0:
		fmt.Fprintln(stderr, usage)
		return true, &exitError{code: 2}
	case args[0] == "-h" || args[0] == "--help" || args[0] == "help":
		fmt.Fprintln(stdout, usage)
		return true, nil
	}
	return false, nil
}

// dataFlag adds --data with its environment fallback.
func dataFlag(fsUsage, name string, stderr io.Writer, getenv func(string) string) *flagSetWithData {
	fs := newFlagSet(name, fsUsage, stderr)
	def := getenv("MCPAUTH_DATA")
	if def == "" {
		def = "./mcpauth-data"
	}
	return &flagSetWithData{FlagSet: fs, data: fs.String("data", def, "data directory (env MCPAUTH_DATA)"),
		store: fs.String("store", getenv("MCPAUTH_STORE"), "a postgres:// URL; empty means SQLite in --data (env MCPAUTH_STORE)")}
}

// open opens the store the flags name.
func (f *flagSetWithData) open(ctx context.Context) (store.Store, error) {
	return openStore(ctx, *f.store, *f.data)
}

func runUsers(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if done, err := groupHelp(args, usersUsage, stdout, stderr); done {
		return err
	}
	sub := args[0]
	f := dataFlag(usersUsage, "users "+sub, stderr, getenv)
	pwStdin := f.Bool("password-stdin", false, "read the password from the first line of standard input")
	pos, err := interleaved(f.FlagSet, args[1:], stdout)
	if err != nil {
		return err
	}
	need := map[string]int{"add": 1, "list": 0, "remove": 1}
	n, ok := need[sub]
	if !ok {
		fmt.Fprintln(stderr, usersUsage)
		return usageError("unknown users command %q", sub)
	}
	if len(pos) != n {
		return usageError("users %s takes %d argument(s), got %d", sub, n, len(pos))
	}
	db, err := f.open(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	switch sub {
	case "add":
		name := pos[0]
		if name == "" || len(name) > 64 || !utf8.ValidString(name) || strings.ContainsAny(name, " \t\r\n") {
			return usageError("user name %q: 1-64 characters without spaces", name)
		}
		if !*pwStdin {
			return usageError("users add needs --password-stdin (passwords never go on the command line)")
		}
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read password: %w", err)
		}
		pw := strings.TrimRight(line, "\r\n")
		if len(pw) < 8 {
			return usageError("password: at least 8 characters are required")
		}
		err = db.CreateUser(ctx, store.User{ID: newUserID(), Name: name, PasswordHash: authserver.HashPassword(pw), CreatedAt: time.Now()})
		if errors.Is(err, store.ErrConflict) {
			return fmt.Errorf("user %q already exists", name)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "added user %s\n", name)
	case "list":
		users, err := db.ListUsers(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tCREATED")
		for _, u := range users {
			fmt.Fprintf(tw, "%s\t%s\n", u.Name, u.CreatedAt.UTC().Format(time.RFC3339))
		}
		tw.Flush()
	case "remove":
		err := db.DeleteUser(ctx, pos[0])
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("no user %q", pos[0])
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "removed user %s (sessions, consents and tokens revoked)\n", pos[0])
	}
	return nil
}

type flagSetWithData struct {
	*flag.FlagSet
	data, store *string
}

func runClients(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if done, err := groupHelp(args, clientsUsage, stdout, stderr); done {
		return err
	}
	sub := args[0]
	if sub == "check" {
		return runClientCheck(ctx, args[1:], getenv, stdout, stderr)
	}
	f := dataFlag(clientsUsage, "clients "+sub, stderr, getenv)
	reason := f.String("reason", "", "why the client is blocked (shown by clients list)")
	pos, err := interleaved(f.FlagSet, args[1:], stdout)
	if err != nil {
		return err
	}
	need := map[string]int{"list": 0, "block": 1, "unblock": 1}
	n, ok := need[sub]
	if !ok {
		fmt.Fprintln(stderr, clientsUsage)
		return usageError("unknown clients command %q", sub)
	}
	if len(pos) != n {
		return usageError("clients %s takes %d argument(s), got %d", sub, n, len(pos))
	}
	if n == 1 {
		if _, err := cimd.NewPolicy(cimd.PolicyConfig{Deny: []string{pos[0]}}); err != nil {
			return usageError("%v", err)
		}
	}
	db, err := f.open(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	switch sub {
	case "list":
		return listClients(ctx, db, stdout)
	case "block":
		if err := db.PutBlock(ctx, store.Block{Pattern: pos[0], Reason: *reason, CreatedAt: time.Now()}); err != nil {
			return err
		}
		fmt.Fprint(stdout, blockBounds(pos[0]))
	case "unblock":
		err := db.DeleteBlock(ctx, pos[0])
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%q is not blocked", pos[0])
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "unblocked %s\n", pos[0])
	}
	return nil
}

// blockBounds says when a block made now takes effect: on a running
// server, and for the access tokens already issued in each token mode.
func blockBounds(pattern string) string {
	reload := policyReloadInterval * 2
	return fmt.Sprintf(`blocked %s; a running server refuses its authorizations, refreshes and introspections within %s.
Access tokens already issued stay valid:
  as JWTs (mcpauth proxy, resource.JWTVerifier): until they expire, at most the access-token lifetime (lifetimes.access_token: %s unless configured, at most %s)
  with introspection (mcpauth proxy --introspect): for at most %s (%s plus --introspect-cache, default %s)
`, pattern, reload, authserver.Lifetimes{}.WithDefaults().AccessToken, maxAccessLifetime,
		reload+defaultIntrospectCache, reload, defaultIntrospectCache)
}

func listClients(ctx context.Context, db store.Store, stdout io.Writer) error {
	seen, err := db.ListClientsSeen(ctx)
	if err != nil {
		return err
	}
	blocks, err := db.ListBlocks(ctx)
	if err != nil {
		return err
	}
	var deny []string
	for _, b := range blocks {
		deny = append(deny, b.Pattern)
	}
	pol, err := cimd.NewPolicy(cimd.PolicyConfig{Deny: deny})
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CLIENT_ID\tTIER\tUSERS\tFIRST_SEEN\tLAST_SEEN\tLAST_RESULT")
	for _, c := range seen {
		tier := c.Tier
		if id, err := cimd.ParseClientID(c.ClientID); err == nil {
			if t, _ := pol.Evaluate(id); t == cimd.TierBlocked {
				tier = string(cimd.TierBlocked)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", c.ClientID, tier, c.Users,
			c.FirstSeen.UTC().Format(time.RFC3339), c.LastSeen.UTC().Format(time.RFC3339), c.LastResult)
	}
	tw.Flush()
	if len(blocks) > 0 {
		fmt.Fprintln(stdout, "\nBlocks:")
		tw = tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "PATTERN\tSINCE\tREASON")
		for _, b := range blocks {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", b.Pattern, b.CreatedAt.UTC().Format(time.RFC3339), b.Reason)
		}
		tw.Flush()
	}
	return nil
}

func runKeys(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if done, err := groupHelp(args, keysUsage, stdout, stderr); done {
		return err
	}
	sub := args[0]
	f := dataFlag(keysUsage, "keys "+sub, stderr, getenv)
	var kekFile, from, to *string
	if sub == "rewrap" {
		from = f.String("from", "", "the key encryption key `FILE` the keys are encrypted with now; absent: they are unencrypted")
		to = f.String("to", "", "the key encryption key `FILE` to encrypt them with; absent: store them unencrypted")
	} else {
		kekFile = f.String("key-encryption-key-file", getenv("MCPAUTH_KEY_ENCRYPTION_KEY_FILE"),
			"`FILE` of the key that encrypts the signing keys at rest (env MCPAUTH_KEY_ENCRYPTION_KEY_FILE)")
	}
	pos, err := interleaved(f.FlagSet, args[1:], stdout)
	if err != nil {
		return err
	}
	if sub != "rotate" && sub != "list" && sub != "rewrap" {
		fmt.Fprintln(stderr, keysUsage)
		return usageError("unknown keys command %q", sub)
	}
	if len(pos) != 0 {
		return usageError("keys %s takes no arguments", sub)
	}
	if sub == "rewrap" {
		return rewrapKeys(ctx, f, *from, *to, stdout)
	}
	kek, err := loadKEK("--key-encryption-key-file", *kekFile)
	if err != nil {
		return err
	}
	db, err := f.open(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	keys := token.NewKeys(db, token.KeyOptions{KEK: kek})
	if err := keys.Load(ctx); err != nil {
		return keyLoadError(err, *kekFile)
	}
	var oldKID string // the key that signed before the rotation
	if sub == "rotate" {
		oldKID = keys.Signer().KeyID()
		if err := keys.Rotate(ctx); err != nil {
			return err
		}
	}
	list, err := db.ListSigningKeys(ctx)
	if err != nil {
		return err
	}
	if sub == "rotate" {
		// Name the key that takes over from the one that signed before: the
		// first to become active after it (now, or once it has been
		// published long enough), not the new next key Rotate also made.
		if i := slices.IndexFunc(list, func(k store.SigningKey) bool { return k.ID == oldKID }); i >= 0 {
			var successor *store.SigningKey
			for j, k := range list {
				if k.ActiveAt.After(list[i].ActiveAt) && (successor == nil || k.ActiveAt.Before(successor.ActiveAt)) {
					successor = &list[j]
				}
			}
			if successor != nil {
				fmt.Fprintf(stdout, "rotated: key %s signs from %s (published before it signs); %s stays published until its tokens expire\n",
					successor.ID, fmtTime(successor.ActiveAt), oldKID)
			}
		}
		if keys.Signer().KeyID() != "" {
			fmt.Fprintf(stdout, "signing now: %s\n", keys.Signer().KeyID())
		}
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KID\tALG\tACTIVE_AT\tRETIRE_AT\tEXPIRE_AT")
	for _, k := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.ID, k.Algorithm, fmtTime(k.ActiveAt), fmtTime(k.RetireAt), fmtTime(k.ExpireAt))
	}
	return tw.Flush()
}

// rewrapKeys is `mcpauth keys rewrap`.
func rewrapKeys(ctx context.Context, f *flagSetWithData, fromFile, toFile string, stdout io.Writer) error {
	if fromFile == "" && toFile == "" {
		return usageError("keys rewrap needs --from FILE, --to FILE or both")
	}
	from, err := loadKEK("--from", fromFile)
	if err != nil {
		return err
	}
	to, err := loadKEK("--to", toFile)
	if err != nil {
		return err
	}
	db, err := f.open(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	rs, ok := db.(interface {
		ReplaceSigningKeyMaterial(ctx context.Context, changes []store.KeyMaterial) error
	})
	if !ok {
		return errors.New("this store cannot rewrap signing keys")
	}
	list, err := db.ListSigningKeys(ctx)
	if err != nil {
		return err
	}
	changes, err := token.Rewrap(list, from, to)
	switch {
	case errors.Is(err, token.ErrKEKRequired):
		return fmt.Errorf("keys rewrap: the keys are encrypted: give their current key with --from FILE: %w", err)
	case errors.Is(err, token.ErrKEKMismatch):
		return fmt.Errorf("keys rewrap: --from %s is not the key the signing keys are encrypted with: %w", fromFile, err)
	case err != nil:
		return fmt.Errorf("keys rewrap: %w", err)
	}
	state, start := "unencrypted", "without --key-encryption-key-file"
	if toFile != "" {
		state, start = "encrypted with the key in "+toFile, "with --key-encryption-key-file "+toFile
	}
	switch err := rs.ReplaceSigningKeyMaterial(ctx, changes); {
	case errors.Is(err, sqlstore.ErrLogHeld):
		return fmt.Errorf("keys rewrap: the keys are now %s, %w; stop every serve and run keys rewrap --from %s --to %s", state, err, toFile, toFile)
	case errors.Is(err, store.ErrConflict):
		return fmt.Errorf("keys rewrap: nothing changed: %w; stop every serve and run the command again", err)
	case err != nil:
		return fmt.Errorf("keys rewrap: nothing changed: %w", err)
	}
	fmt.Fprintf(stdout, "rewrapped %d signing key(s): now %s; start serve %s\n", len(changes), state, start)
	return nil
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

const migrateUsage = `Usage: mcpauth migrate [--store URL] [--data DIR]

Applies the database migrations this binary knows and prints the schema
version. serve applies them too at start (safely when several replicas start
at once); migrate lets operators do it as an explicit step. A database whose
schema is newer than this binary is refused.`

func runMigrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	f := dataFlag(migrateUsage, "migrate", stderr, getenv)
	pos, err := interleaved(f.FlagSet, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usageError("migrate takes no arguments")
	}
	db, err := f.open(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	if m, ok := db.(interface{ Migrate(context.Context) error }); ok {
		if err := m.Migrate(ctx); err != nil {
			return err
		}
	}
	if v, ok := db.(interface {
		SchemaVersion(context.Context) (int, error)
	}); ok {
		n, err := v.SchemaVersion(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "schema is at version %d\n", n)
		return nil
	}
	fmt.Fprintln(stdout, "schema is up to date")
	return nil
}

const backupUsage = `Usage: mcpauth backup --to FILE [--data DIR]

Writes a consistent copy of the SQLite database in --data to FILE (a new
file, mode 0600) while serve keeps running. Restore: stop serve, replace
mcpauth.db with the copy, delete mcpauth.db-wal and mcpauth.db-shm, start.
The copy holds the signing keys: keep it as secret as the data directory.
PostgreSQL (--store) is backed up with pg_dump. See docs/operations.md.`

func runBackup(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	f := dataFlag(backupUsage, "backup", stderr, getenv)
	to := f.String("to", "", "the backup file to create (must not exist)")
	pos, err := interleaved(f.FlagSet, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usageError("backup takes no arguments")
	}
	if *to == "" {
		return usageError("backup needs --to FILE")
	}
	if isPostgresURL(*f.store) {
		return errors.New("backup copies the SQLite store; back up PostgreSQL with pg_dump (see docs/operations.md)")
	}
	if *f.store == "" || *f.store == "sqlite" {
		// Do not create an empty store just to copy it.
		if _, err := os.Stat(filepath.Join(*f.data, "mcpauth.db")); err != nil {
			return fmt.Errorf("no database to back up in %q: %w", *f.data, err)
		}
	}
	db, err := f.open(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	b, ok := db.(interface {
		Backup(ctx context.Context, path string) error
	})
	if !ok {
		return fmt.Errorf("this store cannot be backed up by mcpauth")
	}
	if err := b.Backup(ctx, *to); err != nil {
		return err
	}
	fi, err := os.Stat(*to)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backed up %s to %s (%d bytes)\n", filepath.Join(*f.data, "mcpauth.db"), *to, fi.Size())
	return nil
}
