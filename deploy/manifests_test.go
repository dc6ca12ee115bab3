// Package deploy holds deployment material; this test validates the Kubernetes manifests
// against the API types of Kubernetes and Dapr (strict: unknown or mistyped fields fail), and
// checks that the pieces fit together. No cluster is needed.
package deploy

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	componentsv1alpha1 "github.com/dapr/dapr/pkg/apis/components/v1alpha1"
	configurationv1alpha1 "github.com/dapr/dapr/pkg/apis/configuration/v1alpha1"
	"github.com/dapr/dapr/pkg/injector/annotations"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

type manifests struct {
	deployments   []appsv1.Deployment
	services      []corev1.Service
	pdbs          []policyv1.PodDisruptionBudget
	components    []componentsv1alpha1.Component
	configuration []configurationv1alpha1.Configuration
}

// load decodes every document of every resource of the kustomization, strictly.
func load(t *testing.T, dir string) manifests {
	t.Helper()
	var k struct {
		APIVersion string   `json:"apiVersion"`
		Kind       string   `json:"kind"`
		Resources  []string `json:"resources"`
		Images     []struct {
			Name    string `json:"name"`
			NewName string `json:"newName,omitempty"`
			NewTag  string `json:"newTag,omitempty"`
		} `json:"images"`
	}
	raw, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	require.NoError(t, err)
	require.NoError(t, yaml.UnmarshalStrict(raw, &k))
	require.Equal(t, "Kustomization", k.Kind)

	var m manifests
	for _, res := range k.Resources {
		raw, err := os.ReadFile(filepath.Join(dir, res))
		require.NoError(t, err, "kustomization lists %s", res)
		for i, doc := range strings.Split(string(raw), "\n---\n") {
			var head struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
			}
			require.NoError(t, yaml.Unmarshal([]byte(doc), &head))
			where := fmt.Sprintf("%s document %d (%s %s)", res, i+1, head.APIVersion, head.Kind)
			strict := func(v any) { require.NoError(t, yaml.UnmarshalStrict([]byte(doc), v), where) }
			switch head.APIVersion + "/" + head.Kind {
			case "apps/v1/Deployment":
				var d appsv1.Deployment
				strict(&d)
				m.deployments = append(m.deployments, d)
			case "v1/Service":
				var s corev1.Service
				strict(&s)
				m.services = append(m.services, s)
			case "policy/v1/PodDisruptionBudget":
				var p policyv1.PodDisruptionBudget
				strict(&p)
				m.pdbs = append(m.pdbs, p)
			case "dapr.io/v1alpha1/Component":
				var c componentsv1alpha1.Component
				strict(&c)
				m.components = append(m.components, c)
			case "dapr.io/v1alpha1/Configuration":
				var c configurationv1alpha1.Configuration
				strict(&c)
				m.configuration = append(m.configuration, c)
			default:
				t.Fatalf("%s: a kind this test does not validate", where)
			}
		}
	}
	return m
}

func (m manifests) deployment(name string) *appsv1.Deployment {
	for i := range m.deployments {
		if m.deployments[i].Name == name {
			return &m.deployments[i]
		}
	}
	return nil
}

func matches(selector, labels map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return len(selector) > 0
}

func portNames(c corev1.Container) map[string]int32 {
	out := map[string]int32{}
	for _, p := range c.Ports {
		out[p.Name] = p.ContainerPort
	}
	return out
}

func resolves(t *testing.T, where string, port intstr.IntOrString, names map[string]int32) {
	t.Helper()
	if port.Type == intstr.String {
		_, ok := names[port.StrVal]
		assert.True(t, ok, "%s: port %q is not declared by the container", where, port.StrVal)
	}
}

func TestKubernetesManifests(t *testing.T) {
	m := load(t, "kubernetes")

	d := m.deployment("wsmanager")
	require.NotNil(t, d, "a wsmanager Deployment")
	assert.GreaterOrEqual(t, *d.Spec.Replicas, int32(2), "several replicas")
	tpl := d.Spec.Template
	assert.True(t, matches(d.Spec.Selector.MatchLabels, tpl.Labels), "selector matches the pod labels")
	ann := tpl.Annotations
	assert.Equal(t, "true", ann["dapr.io/enabled"])
	assert.Equal(t, "wsmanager", ann["dapr.io/app-id"])
	assert.Equal(t, "http", ann["dapr.io/app-protocol"])
	assert.Equal(t, "true", ann["dapr.io/enable-app-health-check"], "a dead app must give up its actors")
	require.Len(t, tpl.Spec.Containers, 1)
	c := tpl.Spec.Containers[0]
	assert.Contains(t, c.Args, "--actor-port="+ann["dapr.io/app-port"], "the sidecar calls the actor host port")
	assert.Contains(t, c.Args, "--host=0.0.0.0", "the API must be reachable from other pods")
	names := portNames(c)
	for _, p := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe} {
		require.NotNil(t, p, "liveness and readiness probes")
		if p.HTTPGet != nil {
			resolves(t, "probe", p.HTTPGet.Port, names)
		}
		if p.GRPC != nil {
			assert.Contains(t, names, "grpc")
			assert.Equal(t, names["grpc"], p.GRPC.Port)
		}
	}
	for _, dep := range m.deployments {
		for _, ct := range dep.Spec.Template.Spec.Containers {
			assert.False(t, ct.Resources.Requests.Cpu().IsZero(), "%s/%s: cpu request", dep.Name, ct.Name)
			assert.False(t, ct.Resources.Requests.Memory().IsZero(), "%s/%s: memory request", dep.Name, ct.Name)
		}
	}
	for key := range ann {
		if strings.HasPrefix(key, "dapr.io/") {
			assert.Contains(t, knownAnnotations, key, "annotation %s is not one the Dapr sidecar injector knows", key)
		}
	}
	cfg := ann["dapr.io/config"]
	assert.True(t, slices.ContainsFunc(m.configuration, func(c configurationv1alpha1.Configuration) bool { return c.Name == cfg }),
		"the Dapr configuration %q exists", cfg)

	for _, s := range m.services {
		var target *appsv1.Deployment
		for i := range m.deployments {
			if matches(s.Spec.Selector, m.deployments[i].Spec.Template.Labels) {
				target = &m.deployments[i]
			}
		}
		require.NotNil(t, target, "service %s selects a deployment", s.Name)
		for _, p := range s.Spec.Ports {
			resolves(t, "service "+s.Name, p.TargetPort, portNames(target.Spec.Template.Spec.Containers[0]))
		}
	}
	for _, p := range m.pdbs {
		assert.True(t, matches(p.Spec.Selector.MatchLabels, tpl.Labels), "PDB %s selects wsmanager", p.Name)
	}

	byName := map[string]componentsv1alpha1.Component{}
	for _, comp := range m.components {
		byName[comp.Name] = comp
		for _, md := range comp.Spec.Metadata {
			if md.Name == "redisHost" {
				host := strings.Split(md.Value.String(), ":")[0]
				assert.True(t, slices.ContainsFunc(m.services, func(s corev1.Service) bool { return s.Name == host }),
					"component %s: redisHost %s is a Service of the manifests", comp.Name, host)
			}
		}
	}
	state, ok := byName["statestore"]
	require.True(t, ok, "a state store component")
	assert.Equal(t, "state.redis", state.Spec.Type)
	assert.True(t, actorStore(state), "actorStateStore is true")
	assert.Equal(t, "pubsub.redis", byName["pubsub"].Spec.Type)
}

// knownAnnotations are the sidecar injector's annotation keys this project may use.
var knownAnnotations = []string{
	annotations.KeyEnabled, annotations.KeyAppID, annotations.KeyAppPort, annotations.KeyAppProtocol,
	annotations.KeyConfig, annotations.KeyEnableAppHealthCheck, annotations.KeyAppHealthCheckPath,
	annotations.KeyAppHealthProbeInterval, annotations.KeyAppHealthThreshold, annotations.KeyCPURequest,
	annotations.KeyMemoryRequest, annotations.KeyBlockShutdownDuration, annotations.KeyLogLevel,
}

func actorStore(c componentsv1alpha1.Component) bool {
	for _, md := range c.Spec.Metadata {
		if md.Name == "actorStateStore" && md.Value.String() == "true" {
			return true
		}
	}
	return false
}

// Ensure the validation itself catches mistakes: a misspelled field fails strict decoding.
func TestStrictDecodingCatchesTypos(t *testing.T) {
	var d appsv1.Deployment
	err := yaml.UnmarshalStrict([]byte("apiVersion: apps/v1\nkind: Deployment\nspec:\n  replica: 3\n"), &d)
	assert.Error(t, err)
}
