// Package gateway owns the HTTP side of the API: REST/JSON transcoding of the google.api.http
// rules in the .proto, the Connect protocol and gRPC-Web, all by vanguard over the service's
// own gRPC server (its ServeHTTP), so that every HTTP call passes the same interceptors as a
// gRPC call; and the HTTP health check.
//
// Vanguard (v0.4) transcodes REST for unary methods with a body or path variables. It lacks two
// things the REST surface has always had (docs/architecture.md, "One HTTP stack"): a
// server-streaming method over REST (GET /v1/events) and map fields in the query
// (GET /v1/connections?tags[k]=v). The GET routes of the http rules are therefore served
// here: the query becomes the request message (query.go), the call goes in-process to the same
// vanguard handler as a gRPC-Web call, and the reply is rendered as REST JSON (getroute.go).
package gateway

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"connectrpc.com/connect"
	"connectrpc.com/vanguard"
	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"
)

// Service is the API the gateway serves.
var Service = pb.File_websocketmanager_proto.Services().ByName("WebSocketManager")

// New returns the HTTP handler of the API: REST under /v1/, the Connect protocol, gRPC-Web and
// gRPC under /websocketmanager.v1.WebSocketManager/, and GET /healthz. grpcHandler serves the
// calls as gRPC (a *grpc.Server); only the WebSocketManager service is reachable through it. A
// request body larger than maxBody is refused (400 on REST).
func New(grpcHandler http.Handler, maxBody int64) (http.Handler, error) {
	// REST rejects unknown JSON fields (INVALID_ARGUMENT, as grpc-gateway did); the Connect
	// protocol keeps vanguard's (and connect-go's) default of ignoring them, so that a newer
	// client's new field does not break an older server.
	rest, err := transcoder(grpcHandler, vanguard.WithCodec(func(res vanguard.TypeResolver) vanguard.Codec {
		c := vanguard.NewJSONCodec(res)
		c.UnmarshalOptions.DiscardUnknown = false
		return restCodec{c}
	}))
	if err != nil {
		return nil, err
	}
	rpc, err := transcoder(grpcHandler)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/v1/", restJSON(rest, maxBody))
	mux.Handle("/"+string(Service.FullName())+"/", http.MaxBytesHandler(rpc, maxBody))
	for _, g := range getRoutes(Service) {
		mux.Handle("GET "+g.path, &getRoute{method: g.method, rpc: rpc, vars: pathVars(g.path)})
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
	})
	return mux, nil
}

// transcoder serves Service's methods over every protocol vanguard speaks, as gRPC calls to h.
func transcoder(h http.Handler, opts ...vanguard.TranscoderOption) (*vanguard.Transcoder, error) {
	svc := vanguard.NewServiceWithSchema(Service, h,
		vanguard.WithTargetProtocols(vanguard.ProtocolGRPC),
		vanguard.WithTargetCodecs(vanguard.CodecProto),
		// Query parameters that name no field are ignored, as grpc-gateway did.
		vanguard.WithRESTUnmarshalOptions(vanguard.RESTUnmarshalOptions{DiscardUnknownQueryParams: true}),
	)
	t, err := vanguard.NewTranscoder([]*vanguard.Service{svc}, opts...)
	if err != nil {
		return nil, fmt.Errorf("HTTP transcoding of %s: %w", Service.FullName(), err)
	}
	return t, nil
}

// restJSON adapts REST requests to vanguard, so that it answers them as grpc-gateway did:
//   - JSON in any spelling of its media type ("Application/JSON", "application/json;
//     charset=UTF-8"; the HTTP guard has refused every other type before), where vanguard
//     takes exactly "application/json" with an optional "; charset=utf-8";
//   - a body over maxBody is INVALID_ARGUMENT (400) "request body too large" before anything
//     runs (through vanguard, the gRPC server sees a failed read: UNAVAILABLE, 503);
//   - a 401 names the scheme (RFC 9110, 11.6.1).
func restJSON(next http.Handler, maxBody int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ct := r.Header.Get("Content-Type"); ct != "" {
			if mt, _, err := mime.ParseMediaType(ct); err == nil && mt == "application/json" {
				r.Header.Set("Content-Type", "application/json")
			}
		}
		if r.Body != nil && r.Body != http.NoBody {
			// Vanguard buffers a REST body whole anyway (it is one JSON message).
			body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
			if err != nil {
				writeStatus(w, status.New(codes.InvalidArgument, err.Error()), false)
				return
			}
			r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
		}
		next.ServeHTTP(&challenge{ResponseWriter: w}, r)
	})
}

// restCodec is vanguard's JSON codec with a malformed body as INVALID_ARGUMENT (400), as
// grpc-gateway answered it (vanguard: UNKNOWN, 500).
type restCodec struct{ *vanguard.JSONCodec }

func (c restCodec) Unmarshal(data []byte, msg proto.Message) error {
	if err := c.JSONCodec.Unmarshal(data, msg); err != nil {
		return connect.NewError(connect.CodeInvalidArgument, err)
	}
	return nil
}

func (c restCodec) UnmarshalField(data []byte, msg proto.Message, field protoreflect.FieldDescriptor) error {
	if err := c.JSONCodec.UnmarshalField(data, msg, field); err != nil {
		return connect.NewError(connect.CodeInvalidArgument, err)
	}
	return nil
}

// challenge adds WWW-Authenticate to a 401.
type challenge struct{ http.ResponseWriter }

func (c *challenge) WriteHeader(code int) {
	if code == http.StatusUnauthorized {
		c.Header().Set("WWW-Authenticate", `Bearer realm="wsmanager"`)
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *challenge) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// getBinding is a GET rule without path variables: its request comes from the query alone.
type getBinding struct {
	path   string
	method protoreflect.MethodDescriptor
}

// getRoutes lists the GET rules of svc's methods that take no path variables (List and
// WatchEvents), and those of server-streaming methods with path variables (WatchFrames: the
// mux's pattern syntax is the rule's, {name} a segment). Vanguard keeps the other rules.
func getRoutes(svc protoreflect.ServiceDescriptor) []getBinding {
	var out []getBinding
	for i := range svc.Methods().Len() {
		md := svc.Methods().Get(i)
		rule, _ := proto.GetExtension(md.Options(), annotations.E_Http).(*annotations.HttpRule)
		for _, r := range append([]*annotations.HttpRule{rule}, rule.GetAdditionalBindings()...) {
			if p := r.GetGet(); p != "" && (!strings.Contains(p, "{") || md.IsStreamingServer()) {
				out = append(out, getBinding{path: p, method: md})
			}
		}
	}
	return out
}
