package telemetry_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mcpauth/mcpauth/internal/telemetry"
	"github.com/mcpauth/mcpauth/internal/telemetry/otlptest"
)

func TestSetupTracing(t *testing.T) {
	tests := []struct {
		name        string
		env         func(url string) map[string]string
		wantService string // "" means nothing is exported
		wantHeader  string // X-Tenant of the export
		wantErr     string
	}{
		{name: "no OTEL variables", env: func(string) map[string]string { return nil }},
		{name: "exporter none", env: func(u string) map[string]string {
			return map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": u}
		}},
		{name: "SDK disabled", env: func(u string) map[string]string {
			return map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": u}
		}},
		{name: "endpoint", env: func(u string) map[string]string { return map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": u} },
			wantService: "mcpauth"},
		{name: "traces endpoint and service name", env: func(u string) map[string]string {
			return map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": u + "/v1/traces", "OTEL_SERVICE_NAME": "auth-eu",
				"OTEL_EXPORTER_OTLP_HEADERS": "x-tenant=a%20b"}
		}, wantService: "auth-eu", wantHeader: "a b"},
		{name: "unsupported exporter", env: func(u string) map[string]string { return map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"} },
			wantErr: "OTEL_TRACES_EXPORTER"},
		{name: "grpc protocol", env: func(u string) map[string]string {
			return map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": u, "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
		}, wantErr: "OTEL_EXPORTER_OTLP_PROTOCOL"},
		{name: "malformed headers", env: func(u string) map[string]string {
			return map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": u, "OTEL_EXPORTER_OTLP_HEADERS": "novalue"}
		}, wantErr: "OTEL_EXPORTER_OTLP_HEADERS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := otlptest.New(t)
			env := tt.env(rc.URL)
			tp, shutdown, err := telemetry.SetupTracing(context.Background(), func(k string) string { return env[k] }, "mcpauth")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("SetupTracing: %v, want an error naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			_, span := tp.Tracer("test").Start(context.Background(), "probe")
			if got := span.IsRecording(); got != (tt.wantService != "") {
				t.Errorf("span recording = %v, want %v", got, tt.wantService != "")
			}
			span.End()
			if err := shutdown(context.Background()); err != nil {
				t.Fatalf("shutdown: %v", err)
			}
			var got []string
			for _, s := range rc.Spans() {
				got = append(got, s.Service+"/"+s.Name)
			}
			var want []string
			if tt.wantService != "" {
				want = []string{tt.wantService + "/probe"}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("exported spans (-want +got):\n%s", diff)
			}
			if h := rc.Header().Get("X-Tenant"); h != tt.wantHeader {
				t.Errorf("X-Tenant = %q, want %q", h, tt.wantHeader)
			}
		})
	}
}
