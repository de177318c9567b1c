// cnitool-compatible test driver on the real libcni (Debian golang-github-appc-cni-dev).
//
//	cnitool add|check|del|gc|status <net> <netns>
//
// Environment as cnitool: NETCONFPATH (default /etc/cni/net.d), CNI_PATH, CNI_ARGS
// ("K=V;K=V"), CAP_ARGS (JSON object), CNI_IFNAME (default eth0), plus
// CNI_CONTAINERID (default: sha512 of the netns path, as cnitool), CNI_CACHE_DIR
// (libcni result cache; default /var/lib/cni) and, for gc, CNI_VALID_ATTACHMENTS
// (JSON [{"containerID":..,"ifname":..}]).
//
// Configs of cniVersion <= 1.0.0 go through libcni's AddNetworkList/CheckNetworkList/
// DelNetworkList. This libcni (1.1.2) predates spec 1.1.0, so 1.1.0 lists, GC and STATUS
// are carried out here per the spec, with libcni's own config parsing, plugin lookup,
// exec and environment (invoke.Args), and the same cache file layout.
//
// Output: the result JSON on stdout (add), nothing for the others; on failure the
// plugin's error as {"code":N,"msg":..,"details":..} on stdout and exit status 1.
package main

import (
	"context"
	"crypto/sha512"
	"encoding/json"
	"errors"
	"fmt"
	"io/ioutil"
	"os"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/utils"
	"github.com/containernetworking/cni/pkg/version"
)

type attachment struct {
	ContainerID string `json:"containerID"`
	IfName      string `json:"ifname"`
}

type cacheFile struct {
	Kind           string                 `json:"kind"`
	ContainerID    string                 `json:"containerId"`
	Config         []byte                 `json:"config"`
	IfName         string                 `json:"ifName"`
	NetworkName    string                 `json:"networkName"`
	CniArgs        [][2]string            `json:"cniArgs,omitempty"`
	CapabilityArgs map[string]interface{} `json:"capabilityArgs,omitempty"`
	RawResult      map[string]interface{} `json:"result,omitempty"`
}

func main() {
	if len(os.Args) < 3 {
		usage()
	}
	verb := os.Args[1]
	netName := os.Args[2]
	netns := ""
	if len(os.Args) > 3 {
		netns = os.Args[3]
		if netns != "" && !strings.Contains(netns, "/") {
			netns = "/var/run/netns/" + netns
		}
	}

	confDir := envOr("NETCONFPATH", "/etc/cni/net.d")
	list, err := libcni.LoadConfList(confDir, netName)
	if err != nil {
		fail(err)
	}
	// Spec 1.1.0: cniVersions lists what the config supports; use the highest we know.
	if vs := cniVersions(list.Bytes); len(vs) > 0 {
		best := ""
		for _, v := range vs {
			if known(v) && (best == "" || greater(v, best)) {
				best = v
			}
		}
		if best != "" {
			list.CNIVersion = best
		}
	}

	rt := &libcni.RuntimeConf{
		ContainerID: os.Getenv("CNI_CONTAINERID"),
		NetNS:       netns,
		IfName:      envOr("CNI_IFNAME", "eth0"),
	}
	if rt.ContainerID == "" {
		rt.ContainerID = fmt.Sprintf("%x", sha512.Sum512([]byte(netns)))[:64]
	}
	if a := os.Getenv("CNI_ARGS"); a != "" {
		for _, kv := range strings.Split(a, ";") {
			p := strings.SplitN(kv, "=", 2)
			if len(p) != 2 {
				fail(fmt.Errorf("invalid CNI_ARGS pair %q", kv))
			}
			rt.Args = append(rt.Args, [2]string{p[0], p[1]})
		}
	}
	if c := os.Getenv("CAP_ARGS"); c != "" {
		if err := json.Unmarshal([]byte(c), &rt.CapabilityArgs); err != nil {
			fail(fmt.Errorf("invalid CAP_ARGS: %w", err))
		}
	}

	cacheDir := envOr("CNI_CACHE_DIR", "/var/lib/cni")
	path := filepath.SplitList(os.Getenv("CNI_PATH"))
	exec := &invoke.DefaultExec{RawExec: &invoke.RawExec{Stderr: os.Stderr}, PluginDecoder: version.PluginDecoder{}}
	cni := libcni.NewCNIConfigWithCacheDir(path, cacheDir, exec)
	d := &driver{cni: cni, exec: exec, path: path, cacheDir: cacheDir, list: list}
	ctx := context.Background()

	modern := list.CNIVersion == "1.1.0"
	switch verb {
	case "add":
		if modern {
			res, err := d.add(ctx, rt)
			if err != nil {
				fail(err)
			}
			os.Stdout.Write(res)
			os.Stdout.Write([]byte("\n"))
			return
		}
		res, err := cni.AddNetworkList(ctx, list, rt)
		if err != nil {
			fail(err)
		}
		if err := res.Print(); err != nil {
			fail(err)
		}
	case "check":
		if modern {
			err = d.check(ctx, rt)
		} else {
			err = cni.CheckNetworkList(ctx, list, rt)
		}
		if err != nil {
			fail(err)
		}
	case "del":
		if modern {
			err = d.del(ctx, rt)
		} else {
			err = cni.DelNetworkList(ctx, list, rt)
		}
		if err != nil {
			fail(err)
		}
	case "gc":
		var valid []attachment
		if v := os.Getenv("CNI_VALID_ATTACHMENTS"); v != "" {
			if err := json.Unmarshal([]byte(v), &valid); err != nil {
				fail(fmt.Errorf("invalid CNI_VALID_ATTACHMENTS: %w", err))
			}
		}
		if err := d.gc(ctx, valid); err != nil {
			fail(err)
		}
	case "status":
		if err := d.status(ctx); err != nil {
			fail(err)
		}
	default:
		usage()
	}
}

type driver struct {
	cni      *libcni.CNIConfig
	exec     *invoke.DefaultExec
	path     []string
	cacheDir string
	list     *libcni.NetworkConfigList
}

// pluginConf is libcni's buildOneConfig: name, cniVersion, prevResult and the runtimeConfig
// keys the plugin declared among its capabilities.
func (d *driver) pluginConf(net *libcni.NetworkConfig, prev map[string]interface{}, rt *libcni.RuntimeConf) ([]byte, error) {
	inject := map[string]interface{}{"name": d.list.Name, "cniVersion": d.list.CNIVersion}
	if prev != nil {
		inject["prevResult"] = prev
	}
	conf, err := libcni.InjectConf(net, inject)
	if err != nil {
		return nil, err
	}
	rc := map[string]interface{}{}
	if rt != nil {
		for capability, on := range net.Network.Capabilities {
			if v, ok := rt.CapabilityArgs[capability]; ok && on {
				rc[capability] = v
			}
		}
	}
	if len(rc) > 0 {
		if conf, err = libcni.InjectConf(conf, map[string]interface{}{"runtimeConfig": rc}); err != nil {
			return nil, err
		}
	}
	return conf.Bytes, nil
}

func (d *driver) run(ctx context.Context, verb string, net *libcni.NetworkConfig, stdin []byte, rt *libcni.RuntimeConf) ([]byte, error) {
	pluginPath, err := d.exec.FindInPath(net.Network.Type, d.path)
	if err != nil {
		return nil, err
	}
	args := &invoke.Args{Command: verb, Path: strings.Join(d.path, string(os.PathListSeparator))}
	if rt != nil {
		args.ContainerID, args.NetNS, args.IfName, args.PluginArgs = rt.ContainerID, rt.NetNS, rt.IfName, rt.Args
	}
	return d.exec.ExecPlugin(ctx, pluginPath, stdin, args.AsEnv())
}

func (d *driver) cachePath(containerID, ifname string) string {
	return filepath.Join(d.cacheDir, "results", d.list.Name+"-"+containerID+"-"+ifname)
}

func (d *driver) add(ctx context.Context, rt *libcni.RuntimeConf) ([]byte, error) {
	if err := utils.ValidateContainerID(rt.ContainerID); err != nil {
		return nil, err
	}
	if err := utils.ValidateNetworkName(d.list.Name); err != nil {
		return nil, err
	}
	if err := utils.ValidateInterfaceName(rt.IfName); err != nil {
		return nil, err
	}
	var prev map[string]interface{}
	var out []byte
	for _, net := range d.list.Plugins {
		stdin, err := d.pluginConf(net, prev, rt)
		if err != nil {
			return nil, err
		}
		out, err = d.run(ctx, "ADD", net, stdin, rt)
		if err != nil {
			return nil, fmt.Errorf("plugin type=%q failed (add): %w", net.Network.Type, err)
		}
		prev = map[string]interface{}{}
		if err := json.Unmarshal(out, &prev); err != nil {
			return nil, fmt.Errorf("plugin type=%q returned bad result: %w", net.Network.Type, err)
		}
		if v, _ := prev["cniVersion"].(string); v != d.list.CNIVersion {
			return nil, fmt.Errorf("plugin type=%q returned result version %q, want %q", net.Network.Type, v, d.list.CNIVersion)
		}
	}
	cached := cacheFile{Kind: libcni.CNICacheV1, ContainerID: rt.ContainerID, Config: d.list.Bytes, IfName: rt.IfName,
		NetworkName: d.list.Name, CniArgs: rt.Args, CapabilityArgs: rt.CapabilityArgs, RawResult: prev}
	b, _ := json.Marshal(&cached)
	p := d.cachePath(rt.ContainerID, rt.IfName)
	if err := os.MkdirAll(filepath.Dir(p), 0700); err != nil {
		return nil, err
	}
	if err := ioutil.WriteFile(p, b, 0600); err != nil {
		return nil, err
	}
	return json.Marshal(prev)
}

func (d *driver) cached(containerID, ifname string) (*cacheFile, error) {
	b, err := ioutil.ReadFile(d.cachePath(containerID, ifname))
	if err != nil {
		return nil, nil
	}
	var c cacheFile
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

func (d *driver) check(ctx context.Context, rt *libcni.RuntimeConf) error {
	if d.list.DisableCheck {
		return nil
	}
	c, err := d.cached(rt.ContainerID, rt.IfName)
	if err != nil {
		return err
	}
	if c == nil || c.RawResult == nil {
		return fmt.Errorf("no cached result for network %q", d.list.Name)
	}
	for _, net := range d.list.Plugins {
		stdin, err := d.pluginConf(net, c.RawResult, rt)
		if err != nil {
			return err
		}
		if _, err := d.run(ctx, "CHECK", net, stdin, rt); err != nil {
			return err
		}
	}
	return nil
}

func (d *driver) del(ctx context.Context, rt *libcni.RuntimeConf) error {
	c, err := d.cached(rt.ContainerID, rt.IfName)
	if err != nil {
		return err
	}
	var prev map[string]interface{}
	if c != nil {
		prev = c.RawResult
	}
	for i := len(d.list.Plugins) - 1; i >= 0; i-- {
		net := d.list.Plugins[i]
		stdin, err := d.pluginConf(net, prev, rt)
		if err != nil {
			return err
		}
		if _, err := d.run(ctx, "DEL", net, stdin, rt); err != nil {
			return fmt.Errorf("plugin type=%q failed (delete): %w", net.Network.Type, err)
		}
	}
	_ = os.Remove(d.cachePath(rt.ContainerID, rt.IfName))
	return nil
}

// gc follows spec 1.1.0 "Garbage collection": DEL every cached attachment of this network
// that is not valid, then (config version >= 1.1.0) send GC with cni.dev/valid-attachments.
func (d *driver) gc(ctx context.Context, valid []attachment) error {
	isValid := map[string]bool{}
	for _, a := range valid {
		isValid[a.ContainerID+"\x00"+a.IfName] = true
	}
	files, _ := filepath.Glob(filepath.Join(d.cacheDir, "results", d.list.Name+"-*"))
	var errs []string
	for _, f := range files {
		b, err := ioutil.ReadFile(f)
		if err != nil {
			continue
		}
		var c cacheFile
		if json.Unmarshal(b, &c) != nil || c.NetworkName != d.list.Name {
			continue
		}
		if isValid[c.ContainerID+"\x00"+c.IfName] {
			continue
		}
		rt := &libcni.RuntimeConf{ContainerID: c.ContainerID, IfName: c.IfName, Args: c.CniArgs, CapabilityArgs: c.CapabilityArgs}
		var err2 error
		if d.list.CNIVersion == "1.1.0" {
			err2 = d.del(ctx, rt)
		} else {
			err2 = d.cni.DelNetworkList(ctx, d.list, rt)
		}
		if err2 != nil {
			errs = append(errs, err2.Error())
		}
	}
	if !greaterEq(d.list.CNIVersion, "1.1.0") {
		return joinErrs(errs)
	}
	if valid == nil {
		valid = []attachment{}
	}
	for _, net := range d.list.Plugins {
		conf, err := d.pluginConf(net, nil, nil)
		if err != nil {
			return err
		}
		conf2, err := libcni.InjectConf(&libcni.NetworkConfig{Network: net.Network, Bytes: conf},
			map[string]interface{}{"cni.dev/valid-attachments": valid})
		if err != nil {
			return err
		}
		if _, err := d.run(ctx, "GC", net, conf2.Bytes, nil); err != nil {
			errs = append(errs, err.Error())
			if len(d.list.Plugins) == 1 {
				return err
			}
		}
	}
	return joinErrs(errs)
}

// status follows spec 1.1.0 STATUS: each plugin of a >= 1.1.0 config, in order; first error wins.
func (d *driver) status(ctx context.Context) error {
	if !greaterEq(d.list.CNIVersion, "1.1.0") {
		return nil
	}
	for _, net := range d.list.Plugins {
		conf, err := d.pluginConf(net, nil, nil)
		if err != nil {
			return err
		}
		if _, err := d.run(ctx, "STATUS", net, conf, nil); err != nil {
			return err
		}
	}
	return nil
}

func cniVersions(b []byte) []string {
	var raw struct {
		CNIVersions []string `json:"cniVersions"`
	}
	_ = json.Unmarshal(b, &raw)
	return raw.CNIVersions
}

var order = []string{"0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"}

func known(v string) bool {
	for _, o := range order {
		if o == v {
			return true
		}
	}
	return false
}

func rank(v string) int {
	for i, o := range order {
		if o == v {
			return i
		}
	}
	return -1
}

func greater(a, b string) bool   { return rank(a) > rank(b) }
func greaterEq(a, b string) bool { return rank(a) >= rank(b) }

func joinErrs(errs []string) error {
	if len(errs) == 0 {
		return nil
	}
	return errors.New(strings.Join(errs, "; "))
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func fail(err error) {
	var te *types.Error
	out := map[string]interface{}{"code": 0, "msg": err.Error()}
	if errors.As(err, &te) {
		out["code"] = te.Code
		out["msg"] = te.Msg
		if te.Details != "" {
			out["details"] = te.Details
		}
		out["wrapped"] = err.Error()
	}
	b, _ := json.Marshal(out)
	os.Stdout.Write(append(b, '\n'))
	os.Exit(1)
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: cnitool add|check|del|gc|status <net> <netns>")
	os.Exit(2)
}
