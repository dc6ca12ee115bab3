//go:build integration

package main_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/websocketmanager/websocketmanager/actors/session/sessiontest"
)

// copyTree copies the named entries of src into dst (cp -r), so that building a package
// never writes into the source tree another test may be compiling at the same time.
func copyTree(t *testing.T, src, dst string, names ...string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(dst, 0o755))
	for _, n := range names {
		out, err := exec.Command("cp", "-r", filepath.Join(src, n), dst).CombinedOutput()
		require.NoError(t, err, "cp %s: %s", n, out)
	}
}

// Ensure the Python client installs as a wheel and works installed: the wheel is built with
// Debian's setuptools (no PyPI), installed into a fresh venv that sees Debian's grpcio and
// protobuf (--system-site-packages), and the client's tests run with that venv's python from
// a directory without the sources, so they import the installed package.
func TestInstallPythonWheel(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	src := filepath.Join(env.root, "clients", "python")
	tmp := t.TempDir()
	build := filepath.Join(tmp, "build")
	copyTree(t, src, build, "pyproject.toml", "README.md", "websocketmanager", "virtufin")
	dist := filepath.Join(tmp, "dist")
	runClientCommand(t, ctx, build, nil, "/usr/bin/python3", "-m", "pip", "wheel",
		"--no-deps", "--no-build-isolation", "--no-index", "-w", dist, ".")
	wheels, err := filepath.Glob(filepath.Join(dist, "virtufin_websocketmanager-*.whl"))
	require.NoError(t, err)
	require.Len(t, wheels, 1, "one wheel built")

	venv := filepath.Join(tmp, "venv")
	runClientCommand(t, ctx, tmp, nil, "/usr/bin/python3", "-m", "venv", "--system-site-packages", venv)
	python := filepath.Join(venv, "bin", "python")
	runClientCommand(t, ctx, tmp, nil, python, "-m", "pip", "install", "--no-deps", "--no-index", wheels[0])

	// Only the tests are copied: the package must come from the venv, descriptor included.
	run := filepath.Join(tmp, "run")
	copyTree(t, src, run, "tests")
	which := exec.CommandContext(ctx, python, "-c",
		"import websocketmanager, virtufin.websocketmanager.client as c; print(websocketmanager.__file__)")
	which.Dir = run
	out, err := which.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.True(t, strings.HasPrefix(strings.TrimSpace(string(out)), venv), "imported from the venv, not the sources: %s", out)

	ws := sessiontest.NewServer(t, time.Hour)
	runClientCommand(t, ctx, run, append(clientEnv(ws), "PYTHONDONTWRITEBYTECODE=1"), python, "-m", "unittest", "-v",
		"tests/test_client.py", "tests/test_frames.py", "tests/test_proto_compat.py", "tests/test_connect_options.py")
}

// Ensure the TypeScript client packs as an npm package that a project installs and uses:
// npm pack (which builds with tsc), npm install of the tarball into a new project, and the
// API reference's example (src/seed-example.ts, importing the package instead of relative
// paths) compiles there with strict tsc and runs against the service.
func TestInstallTypeScriptPackage(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	src := filepath.Join(env.root, "clients", "typescript")
	if _, err := os.Stat(filepath.Join(src, "node_modules", ".bin", "tsc")); err != nil {
		runClientCommand(t, ctx, src, nil, "npm", "ci", "--no-audit", "--no-fund")
	}
	tmp := t.TempDir()
	pkgDir := filepath.Join(tmp, "pkg")
	copyTree(t, src, pkgDir, "package.json", "package-lock.json", "tsconfig.json", "README.md", "src", "test")
	require.NoError(t, os.Symlink(filepath.Join(src, "node_modules"), filepath.Join(pkgDir, "node_modules")))
	runClientCommand(t, ctx, pkgDir, nil, "npm", "pack", "--pack-destination", tmp)
	tarballs, err := filepath.Glob(filepath.Join(tmp, "*.tgz"))
	require.NoError(t, err)
	require.Len(t, tarballs, 1, "one tarball packed")

	listing, err := exec.CommandContext(ctx, "tar", "-tzf", tarballs[0]).CombinedOutput()
	require.NoError(t, err, "%s", listing)
	for _, want := range []string{"package/package.json", "package/dist/src/index.js", "package/dist/src/index.d.ts",
		"package/dist/src/generated/websocketmanager_pb.js", "package/dist/src/generated/websocketmanager_pb.d.ts"} {
		require.Contains(t, string(listing), want+"\n")
	}
	require.NotContains(t, string(listing), "dist/test/", "tests are not published")
	require.NotContains(t, string(listing), "seed-example", "the example is not published")

	// The consumer: a new ES module project with the tarball, TypeScript and Node's types at
	// the client's own pinned versions (from npm's cache when it has them).
	app := filepath.Join(tmp, "app")
	require.NoError(t, os.MkdirAll(app, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(app, "package.json"), []byte(`{"name": "app", "private": true, "type": "module"}`), 0o644))
	manifest := readPackageJSON(t, src)
	runClientCommand(t, ctx, app, nil, "npm", "install", "--prefer-offline", "--no-audit", "--no-fund", tarballs[0],
		"typescript@"+manifest.DevDependencies["typescript"], "@types/node@"+manifest.DevDependencies["@types/node"])

	example, err := os.ReadFile(filepath.Join(src, "src", "seed-example.ts"))
	require.NoError(t, err)
	pkg := manifest.Name
	replaced := strings.NewReplacer(
		`"./generated/websocketmanager_pb.js"`, `"`+pkg+`/generated/websocketmanager_pb.js"`,
		`"./index.js"`, `"`+pkg+`"`).Replace(string(example))
	require.NotRegexp(t, regexp.MustCompile(`from "\./`), replaced, "every relative import of the example maps to the package")
	require.NoError(t, os.WriteFile(filepath.Join(app, "seed-example.ts"), []byte(replaced), 0o644))
	// A Node project's settings: no DOM library, strict, Node's ESM resolution (which reads
	// the package's "exports" and "types").
	require.NoError(t, os.WriteFile(filepath.Join(app, "tsconfig.json"), []byte(`{
  "compilerOptions": {"target": "ES2022", "module": "NodeNext", "moduleResolution": "NodeNext", "strict": true,
    "skipLibCheck": true, "outDir": "dist", "lib": ["ES2022"], "types": ["node"]},
  "files": ["seed-example.ts"]
}`), 0o644))
	runClientCommand(t, ctx, app, nil, filepath.Join(app, "node_modules", ".bin", "tsc"), "-p", ".")

	ws := sessiontest.NewServer(t, time.Hour)
	cmd := exec.CommandContext(ctx, "node", "dist/seed-example.js")
	cmd.Dir = app
	cmd.Env = append(os.Environ(), clientEnv(ws)...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Regexp(t, `Connected: [0-9a-f-]{36}\nResponse: Hello WebSocket!\n`, string(out))
}

// packageJSON is the package.json in dir: its name and pinned dev dependencies.
type packageJSON struct {
	Name            string            `json:"name"`
	DevDependencies map[string]string `json:"devDependencies"`
}

func readPackageJSON(t *testing.T, dir string) packageJSON {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "package.json"))
	require.NoError(t, err)
	var p packageJSON
	require.NoError(t, json.Unmarshal(b, &p))
	require.NotEmpty(t, p.Name)
	return p
}
