package actors

import (
	"context"
	"hash/fnv"
	"sort"
	"strconv"

	"github.com/dapr/go-sdk/actor"
)

const membersKey = "members"

// Directory is the actor that keeps the set of connection ids. Its methods run one at a time
// (Dapr's turn-based concurrency), which is what keeps the set consistent without ETags.
type Directory struct {
	actor.ServerImplBaseCtx
}

// Type implements actor.ServerContext.
func (d *Directory) Type() string { return DirectoryType }

func (d *Directory) load(ctx context.Context) (map[string]bool, error) {
	sm := d.GetStateManager()
	m := map[string]bool{}
	ok, err := sm.Contains(ctx, membersKey)
	if err != nil || !ok {
		return m, err
	}
	if err := sm.Get(ctx, membersKey, &m); err != nil {
		return nil, err
	}
	if m == nil {
		m = map[string]bool{}
	}
	return m, nil
}

func (d *Directory) update(ctx context.Context, id string, add bool) (*Reply, error) {
	m, err := d.load(ctx)
	if err != nil {
		return &Reply{Error: errorf(CodeUnavailable, "read directory: %v", err)}, nil
	}
	if add {
		m[id] = true
	} else {
		delete(m, id)
	}
	if err := d.GetStateManager().Set(ctx, membersKey, m); err != nil {
		return &Reply{Error: errorf(CodeInternal, "update directory: %v", err)}, nil
	}
	return &Reply{}, nil
}

// Add adds a connection id. See [DirectoryMethodAdd].
func (d *Directory) Add(ctx context.Context, in *MemberArgs) (*Reply, error) {
	return d.update(ctx, in.ID, true)
}

// Remove removes a connection id. See [DirectoryMethodRemove].
func (d *Directory) Remove(ctx context.Context, in *MemberArgs) (*Reply, error) {
	return d.update(ctx, in.ID, false)
}

// Members lists the connection ids in lexical order. See [DirectoryMethodMembers].
func (d *Directory) Members(ctx context.Context, _ *Empty) (*MembersReply, error) {
	m, err := d.load(ctx)
	if err != nil {
		return &MembersReply{Reply: Reply{Error: errorf(CodeUnavailable, "read directory: %v", err)}}, nil
	}
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return &MembersReply{IDs: ids}, nil
}

// Ping does nothing. See [DirectoryMethodPing].
func (d *Directory) Ping(context.Context, *Empty) (*Reply, error) { return &Reply{}, nil }

// DirectoryShard returns the directory actor id that holds connection id.
func DirectoryShard(id string) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(id))
	return strconv.Itoa(int(h.Sum32() % DirectoryShards))
}

// NewDirectoryFactory returns the factory of the directory actor.
func NewDirectoryFactory() actor.FactoryContext {
	return func() actor.ServerContext { return &Directory{} }
}
