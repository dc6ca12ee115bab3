package tracing

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
)

// ExportConfig says where spans go.
type ExportConfig struct {
	// Endpoint is the OTLP/gRPC receiver: host:port, or a URL (http:// is plaintext, https://
	// TLS). Empty: no span is recorded or exported.
	Endpoint string
	// Insecure sends to a host:port endpoint without TLS (a collector on loopback or beside
	// the pod); otherwise TLS with the system's roots.
	Insecure bool
	// ServiceName and InstanceID name this process in every span (service.name,
	// service.instance.id).
	ServiceName, InstanceID string
	// Log gets the exporter's own failures (a receiver that is down); nil: not logged.
	Log *zap.Logger
}

// Exporter records spans and sends them, in batches, to an OTLP receiver.
type Exporter struct {
	tp *sdktrace.TracerProvider
}

// NewExporter returns the exporter cfg describes, or nil when cfg names no endpoint. It does
// not connect: spans are sent in the background, and a receiver that is down loses spans, not
// calls.
func NewExporter(ctx context.Context, cfg ExportConfig) (*Exporter, error) {
	if cfg.Endpoint == "" {
		return nil, nil
	}
	var opts []otlptracegrpc.Option
	if strings.Contains(cfg.Endpoint, "://") {
		if !strings.HasPrefix(cfg.Endpoint, "http://") && !strings.HasPrefix(cfg.Endpoint, "https://") {
			return nil, fmt.Errorf("OTLP endpoint %q: the scheme must be http or https", cfg.Endpoint)
		}
		opts = append(opts, otlptracegrpc.WithEndpointURL(cfg.Endpoint))
	} else {
		opts = append(opts, otlptracegrpc.WithEndpoint(cfg.Endpoint))
	}
	if cfg.Insecure {
		opts = append(opts, otlptracegrpc.WithInsecure())
	}
	exp, err := otlptracegrpc.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("OTLP exporter for %q: %w", cfg.Endpoint, err)
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(
		attribute.String("service.name", cfg.ServiceName), attribute.String("service.instance.id", cfg.InstanceID)))
	if err != nil {
		return nil, fmt.Errorf("trace resource: %w", err)
	}
	// Parent-based sampling (the SDK's default): a caller's "not sampled" is respected, a
	// trace the service starts is sampled.
	return &Exporter{tp: sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))}, nil
}

// TracerProvider is the exporter's provider (a no-op one for a nil exporter).
func (e *Exporter) TracerProvider() trace.TracerProvider {
	if e == nil {
		return otel.GetTracerProvider()
	}
	return e.tp
}

// Shutdown sends the spans still waiting and stops the exporter, within ctx. Nil-safe.
func (e *Exporter) Shutdown(ctx context.Context) error {
	if e == nil {
		return nil
	}
	err := e.tp.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return fmt.Errorf("spans not all exported before the shutdown deadline: %w", err)
	}
	return err
}

// Setup starts exporting as cfg says and makes the exporter the process's tracer provider
// (the one [StartServer] and [StartClient] use). With no endpoint it does nothing and returns
// nil; Shutdown of a nil exporter is a no-op.
//
// The provider is process-wide on purpose, as OpenTelemetry designs it: the gRPC interceptors,
// the actor host and the publisher find it without a parameter through every layer. It is set
// once, by the command, before the first call.
func Setup(ctx context.Context, cfg ExportConfig) (*Exporter, error) {
	e, err := NewExporter(ctx, cfg)
	if err != nil || e == nil {
		return nil, err
	}
	if cfg.Log != nil {
		// OpenTelemetry reports export failures to a process-wide handler (stderr by default).
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { cfg.Log.Warn("span export failed", zap.Error(err)) }))
	}
	otel.SetTracerProvider(e.tp)
	return e, nil
}
