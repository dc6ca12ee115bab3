package service

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/websocketmanager/websocketmanager/actors"
	"github.com/websocketmanager/websocketmanager/actors/logkey"
	"github.com/websocketmanager/websocketmanager/actors/metrics"
)

// testAPI is a gRPC service whose unary method and server stream both do what behave says,
// served in-process with the API's interceptor chains (Interceptors).
type testAPI struct {
	behave func(ctx context.Context) error
}

const (
	testService      = "wsmtest.Test"
	testUnaryMethod  = "/" + testService + "/Unary"
	testStreamMethod = "/" + testService + "/Stream"
)

var testDesc = grpc.ServiceDesc{
	ServiceName: testService,
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{MethodName: "Unary", Handler: func(srv any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
		in := new(emptypb.Empty)
		if err := dec(in); err != nil {
			return nil, err
		}
		h := func(ctx context.Context, _ any) (any, error) {
			if err := srv.(*testAPI).behave(ctx); err != nil {
				return nil, err
			}
			return &emptypb.Empty{}, nil
		}
		return ic(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: testUnaryMethod}, h)
	}}},
	Streams: []grpc.StreamDesc{{StreamName: "Stream", ServerStreams: true, Handler: func(srv any, ss grpc.ServerStream) error {
		if err := srv.(*testAPI).behave(ss.Context()); err != nil {
			return err
		}
		return ss.SendMsg(&emptypb.Empty{})
	}}},
}

type chainEnv struct {
	conn    *grpc.ClientConn
	metrics *metrics.Metrics
	logs    *observer.ObservedLogs
}

// serve starts an in-process gRPC server with the API's interceptors in front of register's
// services, and returns a client connection to it.
func serve(t *testing.T, auth *Auth, register func(*grpc.Server)) chainEnv {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	m := metrics.New(func() map[string]int { return nil })
	unary, stream := Interceptors(InterceptorConfig{Log: zap.New(core), Metrics: m, Auth: auth, DefaultDeadline: time.Minute})
	gs := grpc.NewServer(grpc.ChainUnaryInterceptor(unary...), grpc.ChainStreamInterceptor(stream...))
	register(gs)
	l := bufconn.Listen(1 << 20)
	go func() { _ = gs.Serve(l) }()
	t.Cleanup(gs.Stop)
	cc, err := grpc.NewClient("passthrough:///test", grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return l.DialContext(ctx) }))
	require.NoError(t, err)
	t.Cleanup(func() { _ = cc.Close() })
	return chainEnv{conn: cc, metrics: m, logs: logs}
}

func serveTest(t *testing.T, auth *Auth, behave func(ctx context.Context) error) chainEnv {
	return serve(t, auth, func(gs *grpc.Server) { gs.RegisterService(&testDesc, &testAPI{behave: behave}) })
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// callUnary calls the test service's unary method.
func (e chainEnv) callUnary(ctx context.Context) error {
	return e.conn.Invoke(ctx, testUnaryMethod, &emptypb.Empty{}, &emptypb.Empty{})
}

// callStream opens the test service's stream, reads it to its end and returns its status
// (nil for OK) and its response header.
func (e chainEnv) callStream(ctx context.Context) (metadata.MD, error) {
	st, err := e.conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, testStreamMethod)
	if err != nil {
		return nil, err
	}
	if err := st.SendMsg(&emptypb.Empty{}); err != nil {
		return nil, err
	}
	if err := st.CloseSend(); err != nil {
		return nil, err
	}
	for {
		if err := st.RecvMsg(&emptypb.Empty{}); err != nil {
			hdr, _ := st.Header()
			if errors.Is(err, io.EOF) {
				return hdr, nil
			}
			return hdr, err
		}
	}
}

// scrape returns the metrics as exported, by series ("name{labels}").
func (e chainEnv) scrape(t *testing.T) map[string]string {
	t.Helper()
	rec := httptest.NewRecorder()
	e.metrics.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	out := map[string]string{}
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if i := strings.LastIndexByte(line, ' '); i > 0 && !strings.HasPrefix(line, "#") {
			out[line[:i]] = line[i+1:]
		}
	}
	return out
}

// Ensure a domain error from a unary handler and from a stream reaches the caller with its
// mapped code and its own message, whatever the code.
func TestBoundaryMapsEveryCodeForUnaryAndStream(t *testing.T) {
	var give error
	e := serveTest(t, nil, func(context.Context) error { return give })
	for _, c := range actors.Codes {
		give = actors.Errorf(c, "refused: %s", c)
		err := e.callUnary(testCtx(t))
		assert.Equal(t, codeOf[c], status.Code(err), "unary, %s", c)
		assert.Equal(t, "refused: "+string(c), status.Convert(err).Message(), "unary, %s", c)
		_, err = e.callStream(testCtx(t))
		assert.Equal(t, codeOf[c], status.Code(err), "stream, %s", c)
		assert.Equal(t, "refused: "+string(c), status.Convert(err).Message(), "stream, %s", c)
	}
	give = errors.New("dial ws://user:secret@10.0.0.1: refused")
	err := e.callUnary(testCtx(t))
	assert.Equal(t, codes.Internal, status.Code(err))
	assert.Equal(t, msgInternal, status.Convert(err).Message(), "the detail stays in the log")
	_, err = e.callStream(testCtx(t))
	assert.Equal(t, codes.Internal, status.Code(err))
	assert.Equal(t, msgInternal, status.Convert(err).Message())
}

// Ensure a handler that panics — unary or stream — answers INTERNAL, is logged with its stack
// and counted, and the server goes on serving.
func TestPanicsAnswerInternal(t *testing.T) {
	boom := true
	e := serveTest(t, nil, func(context.Context) error {
		if boom {
			panic("boom")
		}
		return nil
	})
	err := e.callUnary(testCtx(t))
	assert.Equal(t, codes.Internal, status.Code(err))
	assert.Equal(t, msgInternal, status.Convert(err).Message())
	_, err = e.callStream(testCtx(t))
	assert.Equal(t, codes.Internal, status.Code(err))
	assert.Equal(t, msgInternal, status.Convert(err).Message())

	panics := e.logs.FilterMessage("handler panic").All()
	require.Len(t, panics, 2)
	assert.Equal(t, testStreamMethod, panics[1].ContextMap()[logkey.GRPCMethod])
	assert.Contains(t, panics[1].ContextMap()["stack"], "interceptors_test.go")
	failed := e.logs.FilterMessage("rpc failed").FilterField(zap.String(logkey.GRPCCode, "Internal")).All()
	assert.Len(t, failed, 2, "each failed call is logged once, with the code the caller saw")
	got := e.scrape(t)
	assert.Equal(t, "1", got[`wsmanager_api_requests_total{code="Internal",method="Unary"}`])
	assert.Equal(t, "1", got[`wsmanager_api_requests_total{code="Internal",method="Stream"}`])

	boom = false
	require.NoError(t, e.callUnary(testCtx(t)), "the server still serves")
	_, err = e.callStream(testCtx(t))
	require.NoError(t, err)
}

// Ensure streams get what unary calls get: authentication (refusals mapped like other
// errors), tracing (the traceparent comes back), logging and metrics.
func TestStreamsGetTheUnaryInterceptors(t *testing.T) {
	auth := &Auth{Tokens: NewTokens([]string{"secret-token"})}
	var sawTrace bool
	e := serveTest(t, auth, func(ctx context.Context) error {
		md, _ := metadata.FromOutgoingContext(ctx)
		sawTrace = len(md.Get("traceparent")) > 0 // calls made for the stream continue its trace
		return nil
	})
	_, err := e.callStream(testCtx(t))
	assert.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)
	assert.Contains(t, status.Convert(err).Message(), "bearer token")

	const trace = "4bf92f3577b34da6a3ce929d0e0e4736"
	ctx := metadata.AppendToOutgoingContext(testCtx(t), "authorization", "Bearer secret-token",
		"traceparent", "00-"+trace+"-00f067aa0ba902b7-01")
	hdr, err := e.callStream(ctx)
	require.NoError(t, err)
	require.NotEmpty(t, hdr.Get("traceparent"))
	assert.Contains(t, hdr.Get("traceparent")[0], trace, "the caller's trace is continued")
	assert.True(t, sawTrace)

	ok := e.logs.FilterMessage("rpc").FilterField(zap.String(logkey.GRPCMethod, testStreamMethod)).All()
	require.Len(t, ok, 1, "the stream is logged when it ends")
	assert.Equal(t, "OK", ok[0].ContextMap()[logkey.GRPCCode])
	assert.Equal(t, trace, ok[0].ContextMap()["trace_id"])
	assert.Len(t, e.logs.FilterMessage("rpc failed").FilterField(zap.String(logkey.GRPCCode, "Unauthenticated")).All(), 1)
	got := e.scrape(t)
	assert.Equal(t, "1", got[`wsmanager_api_requests_total{code="OK",method="Stream"}`])
	assert.Equal(t, "1", got[`wsmanager_api_requests_total{code="Unauthenticated",method="Stream"}`])
	assert.Equal(t, "2", got[`wsmanager_api_request_duration_seconds_count{method="Stream"}`], "both calls timed")
}
