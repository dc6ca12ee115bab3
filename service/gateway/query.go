package gateway

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// queryInto sets msg's fields from URL query parameters as grpc-gateway did: a field by its
// JSON or its proto name, "a.b" into nested messages, "m[key]=value" into a map, a repeated
// field once per value. A parameter that names no field is ignored (grpc-gateway ignored
// them too, so existing callers' extra parameters keep working); a value that does not fit its
// field is an error. Only scalar values (and enums) are supported: the GET requests carry no
// others.
func queryInto(msg protoreflect.Message, q url.Values) error {
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	slices.Sort(keys) // the same query gives the same error
	for _, key := range keys {
		if err := setParam(msg, key, q[key]); err != nil {
			return err
		}
	}
	return nil
}

func setParam(msg protoreflect.Message, key string, values []string) error {
	path, mapKey, isMap := key, "", false
	if i := strings.IndexByte(key, '['); i >= 0 {
		if !strings.HasSuffix(key, "]") || i == 0 {
			return fmt.Errorf("query parameter %q: want name[key]=value", key)
		}
		path, mapKey, isMap = key[:i], key[i+1:len(key)-1], true
	}
	parts := strings.Split(path, ".")
	m := msg
	for i, part := range parts {
		fd := fieldByName(m.Descriptor(), part)
		if fd == nil {
			return nil // names no field: ignored
		}
		if i < len(parts)-1 {
			if fd.Kind() != protoreflect.MessageKind || fd.IsList() || fd.IsMap() {
				return fmt.Errorf("query parameter %q: %s is not a message", key, fd.Name())
			}
			m = m.Mutable(fd).Message()
			continue
		}
		return setField(m, fd, key, mapKey, isMap, values)
	}
	return nil
}

func setField(m protoreflect.Message, fd protoreflect.FieldDescriptor, key, mapKey string, isMap bool, values []string) error {
	switch {
	case isMap != fd.IsMap():
		if fd.IsMap() {
			return fmt.Errorf("query parameter %q: %s is a map: use %s[key]=value", key, fd.Name(), fd.JSONName())
		}
		return fmt.Errorf("query parameter %q: %s is not a map", key, fd.Name())
	case fd.IsMap():
		k, err := scalar(fd.MapKey(), mapKey)
		if err != nil {
			return fmt.Errorf("query parameter %q: key: %w", key, err)
		}
		v, err := scalar(fd.MapValue(), values[len(values)-1])
		if err != nil {
			return fmt.Errorf("query parameter %q: %w", key, err)
		}
		m.Mutable(fd).Map().Set(k.MapKey(), v)
	case fd.IsList():
		l := m.Mutable(fd).List()
		for _, s := range values {
			v, err := scalar(fd, s)
			if err != nil {
				return fmt.Errorf("query parameter %q: %w", key, err)
			}
			l.Append(v)
		}
	default:
		if len(values) > 1 {
			return fmt.Errorf("query parameter %q: one value expected, got %d", key, len(values))
		}
		v, err := scalar(fd, values[0])
		if err != nil {
			return fmt.Errorf("query parameter %q: %w", key, err)
		}
		m.Set(fd, v)
	}
	return nil
}

func fieldByName(md protoreflect.MessageDescriptor, name string) protoreflect.FieldDescriptor {
	if fd := md.Fields().ByJSONName(name); fd != nil {
		return fd
	}
	return md.Fields().ByName(protoreflect.Name(name))
}

// scalar parses s as a value of fd's kind.
func scalar(fd protoreflect.FieldDescriptor, s string) (protoreflect.Value, error) {
	bad := func(err error) (protoreflect.Value, error) {
		return protoreflect.Value{}, fmt.Errorf("%q is not a valid %s: %w", s, fd.Kind(), err)
	}
	switch fd.Kind() {
	case protoreflect.StringKind:
		if !utf8.ValidString(s) {
			return bad(fmt.Errorf("not UTF-8"))
		}
		return protoreflect.ValueOfString(s), nil
	case protoreflect.BoolKind:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return bad(err)
		}
		return protoreflect.ValueOfBool(b), nil
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		n, err := strconv.ParseInt(s, 10, 32)
		if err != nil {
			return bad(err)
		}
		return protoreflect.ValueOfInt32(int32(n)), nil
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return bad(err)
		}
		return protoreflect.ValueOfInt64(n), nil
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		n, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			return bad(err)
		}
		return protoreflect.ValueOfUint32(uint32(n)), nil
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return bad(err)
		}
		return protoreflect.ValueOfUint64(n), nil
	case protoreflect.FloatKind:
		f, err := strconv.ParseFloat(s, 32)
		if err != nil {
			return bad(err)
		}
		return protoreflect.ValueOfFloat32(float32(f)), nil
	case protoreflect.DoubleKind:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return bad(err)
		}
		return protoreflect.ValueOfFloat64(f), nil
	case protoreflect.BytesKind:
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			if b, err = base64.URLEncoding.DecodeString(s); err != nil {
				return bad(err)
			}
		}
		return protoreflect.ValueOfBytes(b), nil
	case protoreflect.EnumKind:
		if ev := fd.Enum().Values().ByName(protoreflect.Name(s)); ev != nil {
			return protoreflect.ValueOfEnum(ev.Number()), nil
		}
		n, err := strconv.ParseInt(s, 10, 32)
		if err != nil {
			return bad(fmt.Errorf("no such value"))
		}
		return protoreflect.ValueOfEnum(protoreflect.EnumNumber(n)), nil
	default:
		return protoreflect.Value{}, fmt.Errorf("%s fields cannot be set from the query", fd.Kind())
	}
}
