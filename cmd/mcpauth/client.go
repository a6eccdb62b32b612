package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mcpauth/mcpauth/internal/clientcheck"
	"github.com/mcpauth/mcpauth/internal/safehttp"
)

const clientUsage = `Usage:
  mcpauth client check URL [--json] [--dev-allow-loopback] [--cimd-ca-file FILE]
  mcpauth client serve-metadata --file client.json [--addr 127.0.0.1:8000] [--rewrite-client-id]

Tools for client authors and operators.

Commands:
  check URL   fetch and validate a client ID metadata document exactly as the server
              would, print the verdict, each problem with its fix and the
              section of the standard behind it, warnings, and the cache
              lifetime the server would apply.
              Exit status: 0 accepted, 1 rejected, 2 usage error.
  serve-metadata
              serve a client ID metadata document on loopback for local
              development and print its client_id URL.`

func runClient(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if done, err := groupHelp(args, clientUsage, stdout, stderr); done {
		return err
	}
	switch args[0] {
	case "check":
		return runClientCheck(ctx, args[1:], getenv, stdout, stderr)
	case "serve-metadata":
		return runClientServeMetadata(ctx, args[1:], stdout, stderr)
	default:
		fmt.Fprintln(stderr, clientUsage)
		return usageError("unknown client command %q", args[0])
	}
}

const clientCheckUsage = `Usage: mcpauth client check URL [--json] [--dev-allow-loopback] [--cimd-ca-file FILE]

Fetches the client ID metadata document at URL and validates it exactly as
mcpauth serve would. Exit status: 0 when the server would accept the client,
1 when it would reject it, 2 on usage errors.`

func runClientCheck(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("client check", clientCheckUsage, stderr)
	var (
		asJSON, devLoopback bool
		caFile              string
		timeout             time.Duration
	)
	t := newTable(fs, setting{},
		setting{flag: "json", boolean: true, help: "print the report as JSON", set: boolean(&asJSON)},
		setting{flag: "dev-allow-loopback", env: "MCPAUTH_DEV_ALLOW_LOOPBACK", boolean: true,
			help: "development only: allow client_ids on loopback hosts (http or https)", set: boolean(&devLoopback)},
		setting{flag: "cimd-ca-file", env: "MCPAUTH_CIMD_CA_FILE", help: "PEM bundle of extra CAs trusted for client hosts, besides the system roots",
			set: text(&caFile)},
		setting{flag: "timeout", def: "5s", help: "overall fetch deadline, a `duration`", set: positiveDuration(&timeout, "5s", 0, "")})
	pos, err := interleaved(fs, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fs.Usage()
		return usageError("client check takes exactly one URL, got %d arguments", len(pos))
	}
	if err := t.resolve(getenv, nil); err != nil {
		return usageError("%v", err)
	}
	roots, err := safehttp.LoadRootCAs(caFile)
	if err != nil {
		return usageError("--cimd-ca-file: %v", err)
	}
	rep, err := clientcheck.Check(ctx, clientcheck.Options{AllowLoopback: devLoopback, RootCAs: roots, Timeout: timeout}, pos[0])
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		printReport(newTermSafe(stdout), rep) // the document's text must not drive the terminal
	}
	if !rep.Accepted {
		return &exitError{code: 1}
	}
	return nil
}

// printReport renders a clientcheck.Report for people.
func printReport(w io.Writer, rep *clientcheck.Report) {
	verdict := "ACCEPTED: mcpauth would accept this client"
	if !rep.Accepted {
		verdict = "REJECTED: mcpauth would refuse this client"
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "client_id\t%s\n", rep.ClientID)
	fmt.Fprintf(tw, "verdict\t%s\n", verdict)
	if rep.Tier != "" {
		fmt.Fprintf(tw, "trust tier\t%s\n", rep.Tier)
	}
	if f := rep.Fetch; f != nil {
		fmt.Fprintf(tw, "fetch\tHTTP %d, %q, %d bytes, from %s\n", f.Status, f.ContentType, f.Bytes, f.Address)
	}
	if c := rep.Cache; c != nil {
		fmt.Fprintf(tw, "cache\t%s\n", describeCache(c))
	}
	tw.Flush()

	if len(rep.Problems) > 0 {
		fmt.Fprintf(w, "\nProblems (%d):\n", len(rep.Problems))
		for _, p := range rep.Problems {
			fmt.Fprintf(w, "  x [%s] %s", p.Ref, p.Message)
			if p.Field != "" {
				fmt.Fprintf(w, " (field %s)", p.Field)
			}
			fmt.Fprintf(w, " <%s>\n", p.Reason)
		}
	}
	if len(rep.Warnings) > 0 {
		fmt.Fprintf(w, "\nWarnings (%d):\n", len(rep.Warnings))
		for _, wn := range rep.Warnings {
			fmt.Fprintf(w, "  ! [%s] %s <%s>\n", wn.Ref, wn.Message, wn.Code)
		}
	}
	if d := rep.Document; d != nil {
		fmt.Fprintln(w, "\nDocument as the server would use it:")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		row := func(k, v string) {
			if v != "" {
				fmt.Fprintf(tw, "  %s\t%s\n", k, v)
			}
		}
		row("client_name", d.DisplayName("")) // as the consent page shows it (CIMD §8.8, §9.2)
		row("redirect_uris", strings.Join(d.RedirectURIs, " "))
		row("token_endpoint_auth_method", d.TokenEndpointAuthMethod)
		row("grant_types", strings.Join(d.GrantTypes, " "))
		row("response_types", strings.Join(d.ResponseTypes, " "))
		row("scope", d.Scope)
		row("jwks_uri", d.JWKSURI)
		if d.JWKS != nil {
			row("jwks", fmt.Sprintf("%d public key(s)", len(d.JWKS.Keys)))
		}
		row("logo_uri", d.LogoURI)
		row("client_uri", d.ClientURI)
		row("fingerprint", d.Fingerprint())
		tw.Flush()
	}
}

func describeCache(c *clientcheck.CacheReport) string {
	if !c.Store {
		return "not stored (no-store): the server fetches it again on every authorization"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "kept %s (from %s", time.Duration(c.LifetimeSeconds)*time.Second, c.Source)
	if c.Clamped && c.OriginSeconds >= 0 {
		fmt.Fprintf(&b, " %s, clamped to the server's bounds", time.Duration(c.OriginSeconds)*time.Second)
	}
	b.WriteString(")")
	if c.Revalidation != "none" {
		fmt.Fprintf(&b, ", then revalidated with %s", c.Revalidation)
	} else {
		b.WriteString(", then fetched again (send an ETag to allow cheap revalidation)")
	}
	if c.StaleIfErrorSeconds > 0 {
		fmt.Fprintf(&b, "; served stale up to %s while the host is down", time.Duration(c.StaleIfErrorSeconds)*time.Second)
	}
	return b.String()
}
