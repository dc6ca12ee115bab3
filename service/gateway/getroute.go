package gateway

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"

	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// jsonOut renders messages as grpc-gateway did (and vanguard's REST does): lowerCamelCase
// names, every field even when empty.
var jsonOut = protojson.MarshalOptions{EmitUnpopulated: true}

// maxReplyFrame bounds one message read back from the in-process call (replies are small;
// a List of many connections is the largest).
const maxReplyFrame = 64 << 20

// getRoute serves a GET rule whose request comes from the query: the call goes to rpc as
// gRPC-Web (binary), so through the gRPC server and its interceptors like every other call.
// A unary reply is the response message as JSON; a stream is newline-delimited JSON, one
// {"result": message} per message and {"error": status} if it ends in an error (grpc-gateway's
// framing). An error before any reply is the HTTP status of its code with a JSON body:
// {"code", "message", "details"} for a unary call, {"error": {...}} for a stream.
type getRoute struct {
	method protoreflect.MethodDescriptor
	rpc    http.Handler
	vars   []string // path variables: string fields of the request, set from the path
}

// pathVars returns the {name} segments of a rule's path.
func pathVars(path string) []string {
	var out []string
	for _, seg := range strings.Split(path, "/") {
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
			out = append(out, seg[1:len(seg)-1])
		}
	}
	return out
}

func (g *getRoute) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	stream := g.method.IsStreamingServer()
	reqType, err := protoregistry.GlobalTypes.FindMessageByName(g.method.Input().FullName())
	if err != nil {
		writeStatus(w, status.New(codes.Internal, err.Error()), stream)
		return
	}
	replyType, err := protoregistry.GlobalTypes.FindMessageByName(g.method.Output().FullName())
	if err != nil {
		writeStatus(w, status.New(codes.Internal, err.Error()), stream)
		return
	}
	req := reqType.New()
	if err := queryInto(req, r.URL.Query()); err != nil {
		writeStatus(w, status.New(codes.InvalidArgument, err.Error()), false) // as grpc-gateway: before the call
		return
	}
	for _, name := range g.vars { // the path wins over the query, as in grpc-gateway
		fd := req.Descriptor().Fields().ByName(protoreflect.Name(name))
		if fd == nil || fd.Kind() != protoreflect.StringKind || fd.IsList() {
			writeStatus(w, status.New(codes.Internal, "path variable "+name+" is not a string field"), stream)
			return
		}
		req.Set(fd, protoreflect.ValueOfString(r.PathValue(name)))
	}
	body, err := proto.Marshal(req.Interface())
	if err != nil {
		writeStatus(w, status.New(codes.InvalidArgument, err.Error()), false)
		return
	}

	inner := r.Clone(r.Context())
	inner.Method = http.MethodPost
	inner.URL = &url.URL{Path: "/" + string(g.method.Parent().FullName()) + "/" + string(g.method.Name())}
	inner.RequestURI = ""
	inner.Header.Set("Content-Type", "application/grpc-web+proto")
	for _, h := range []string{"Content-Length", "Content-Encoding", "Accept-Encoding", "Grpc-Encoding", "Grpc-Accept-Encoding"} {
		inner.Header.Del(h) // frames come back uncompressed
	}
	frame := binary.BigEndian.AppendUint32([]byte{0}, uint32(len(body)))
	frame = append(frame, body...)
	inner.Body = io.NopCloser(bytes.NewReader(frame))
	inner.ContentLength = int64(len(frame))

	out := &replyWriter{out: w, header: http.Header{}, stream: stream, newReply: replyType.New}
	g.rpc.ServeHTTP(out, inner)
	out.finish()
}

// replyWriter reads the gRPC-Web reply as it is written and renders it as REST JSON.
type replyWriter struct {
	out      http.ResponseWriter
	header   http.Header // the gRPC-Web response's
	stream   bool
	newReply func() protoreflect.Message

	code    int
	buf     []byte
	replies []protoreflect.Message // unary: the reply, rendered once the status is known
	started bool                   // stream: the 200 and a line went out
	trailer http.Header
	err     error // the reply could not be read or the client went away
}

func (rw *replyWriter) Header() http.Header { return rw.header }

func (rw *replyWriter) WriteHeader(code int) {
	if rw.code == 0 {
		rw.code = code
	}
}

func (rw *replyWriter) Flush() {}

func (rw *replyWriter) Write(p []byte) (int, error) {
	rw.WriteHeader(http.StatusOK)
	if rw.err != nil {
		return 0, rw.err
	}
	rw.buf = append(rw.buf, p...)
	for len(rw.buf) >= 5 {
		flags, n := rw.buf[0], binary.BigEndian.Uint32(rw.buf[1:5])
		if n > maxReplyFrame {
			rw.err = fmt.Errorf("reply frame of %d bytes", n)
			return 0, rw.err
		}
		if len(rw.buf) < 5+int(n) {
			break
		}
		payload := rw.buf[5 : 5+n]
		switch {
		case flags&0x80 != 0: // the trailer frame: HTTP/1-style header lines
			tr, err := textproto.NewReader(bufio.NewReader(io.MultiReader(bytes.NewReader(payload), strings.NewReader("\r\n")))).ReadMIMEHeader()
			if err != nil && !errors.Is(err, io.EOF) {
				rw.err = fmt.Errorf("reply trailer: %w", err)
				return 0, rw.err
			}
			rw.trailer = http.Header(tr)
		case flags&0x01 != 0:
			rw.err = errors.New("compressed reply frame")
			return 0, rw.err
		default:
			if err := rw.reply(payload); err != nil {
				rw.err = err
				return 0, err
			}
		}
		rw.buf = rw.buf[5+n:]
	}
	return len(p), nil
}

func (rw *replyWriter) reply(payload []byte) error {
	m := rw.newReply()
	if err := proto.Unmarshal(payload, m.Interface()); err != nil {
		return fmt.Errorf("reply: %w", err)
	}
	if !rw.stream {
		rw.replies = append(rw.replies, m)
		return nil
	}
	b, err := jsonOut.Marshal(m.Interface())
	if err != nil {
		return fmt.Errorf("reply: %w", err)
	}
	if !rw.started {
		rw.started = true
		copyMetadata(rw.out.Header(), rw.header)
		rw.out.Header().Set("Content-Type", "application/json")
		rw.out.WriteHeader(http.StatusOK)
	}
	line := append(append([]byte(`{"result":`), b...), "}\n"...)
	if _, err := rw.out.Write(line); err != nil {
		return err // the client went away: the call ends
	}
	_ = http.NewResponseController(rw.out).Flush()
	return nil
}

// finish renders the end of the call: the unary reply, or the status.
func (rw *replyWriter) finish() {
	st := rw.status()
	if st.Code() == codes.OK && !rw.stream {
		if len(rw.replies) != 1 {
			st = status.Newf(codes.Internal, "%d replies to a unary call", len(rw.replies))
		} else {
			b, err := jsonOut.Marshal(rw.replies[0].Interface())
			if err != nil {
				st = status.New(codes.Internal, err.Error())
			} else {
				copyMetadata(rw.out.Header(), rw.header)
				rw.out.Header().Set("Content-Type", "application/json")
				rw.out.WriteHeader(http.StatusOK)
				_, _ = rw.out.Write(b)
				return
			}
		}
	}
	switch {
	case st.Code() == codes.OK && !rw.started:
		rw.out.Header().Set("Content-Type", "application/json")
		rw.out.WriteHeader(http.StatusOK)
	case st.Code() == codes.OK:
	case rw.started:
		_, _ = rw.out.Write(errorLine(st))
	default:
		copyMetadata(rw.out.Header(), rw.header)
		writeStatus(rw.out, st, rw.stream)
	}
}

// status is the call's status: from the trailer frame, else from the headers (a
// "trailers-only" reply), else an error of its own.
func (rw *replyWriter) status() *status.Status {
	if rw.err != nil {
		return status.New(codes.Internal, rw.err.Error())
	}
	tr := rw.trailer
	if tr == nil && rw.header.Get("Grpc-Status") != "" {
		tr = rw.header
	}
	if tr == nil {
		if rw.code != http.StatusOK && rw.code != 0 {
			return status.Newf(codes.Internal, "in-process call answered HTTP %d", rw.code)
		}
		return status.New(codes.Internal, "in-process call ended without a status")
	}
	return statusOf(tr)
}

// statusOf reads a gRPC status from trailer fields.
func statusOf(tr http.Header) *status.Status {
	n, err := strconv.Atoi(tr.Get("Grpc-Status"))
	if err != nil {
		return status.Newf(codes.Internal, "in-process call: grpc-status %q", tr.Get("Grpc-Status"))
	}
	msg := tr.Get("Grpc-Message")
	if m, err := url.PathUnescape(msg); err == nil {
		msg = m
	}
	if bin := tr.Get("Grpc-Status-Details-Bin"); bin != "" {
		if b, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(bin, "=")); err == nil {
			var sp spb.Status
			if proto.Unmarshal(b, &sp) == nil && sp.GetCode() == int32(n) {
				return status.FromProto(&sp)
			}
		}
	}
	return status.New(codes.Code(n), msg)
}

// writeStatus answers an error before any reply: the HTTP status of its code and the status as
// JSON ({"error": status} for a stream, as grpc-gateway framed it).
func writeStatus(w http.ResponseWriter, st *status.Status, stream bool) {
	w.Header().Set("Content-Type", "application/json")
	code := httpStatus(st.Code())
	if code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="wsmanager"`)
	}
	w.WriteHeader(code)
	if stream {
		_, _ = w.Write(errorLine(st))
		return
	}
	b, _ := jsonOut.Marshal(st.Proto())
	_, _ = w.Write(b)
}

func errorLine(st *status.Status) []byte {
	b, _ := jsonOut.Marshal(st.Proto())
	return append(append([]byte(`{"error":`), b...), "}\n"...)
}

// copyMetadata passes the reply's metadata (e.g. traceparent) on, without the gRPC-Web
// framing headers.
func copyMetadata(dst, src http.Header) {
	for k, vs := range src {
		switch ck := http.CanonicalHeaderKey(k); {
		case strings.HasPrefix(ck, "Grpc-"), strings.HasPrefix(ck, "Content-"), ck == "Trailer", ck == "Accept-Encoding":
		default:
			dst[ck] = vs
		}
	}
}

// httpStatus is the HTTP status of a gRPC code: the standard mapping (google.rpc.Code), the
// one vanguard uses for REST and grpc-gateway used.
func httpStatus(c codes.Code) int {
	switch c {
	case codes.OK:
		return http.StatusOK
	case codes.Canceled:
		return 499
	case codes.InvalidArgument, codes.FailedPrecondition, codes.OutOfRange:
		return http.StatusBadRequest
	case codes.DeadlineExceeded:
		return http.StatusGatewayTimeout
	case codes.NotFound:
		return http.StatusNotFound
	case codes.AlreadyExists, codes.Aborted:
		return http.StatusConflict
	case codes.PermissionDenied:
		return http.StatusForbidden
	case codes.Unauthenticated:
		return http.StatusUnauthorized
	case codes.ResourceExhausted:
		return http.StatusTooManyRequests
	case codes.Unimplemented:
		return http.StatusNotImplemented
	case codes.Unavailable:
		return http.StatusServiceUnavailable
	default: // Unknown, Internal, DataLoss and codes beyond
		return http.StatusInternalServerError
	}
}
