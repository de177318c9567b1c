// `brindlectl node status` against a stand-in agent serving the status socket protocol, and
// with no agent at all (a clear message, exit 1).
import t from 'tap';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { brindlectl } from './helpers';

function agentSocket(dir: string, reply: (req: string) => string): Promise<net.Server> {
  return new Promise((resolve) => {
    const srv = net.createServer((s) => {
      s.on('error', () => undefined);
      let buf = '';
      s.setEncoding('utf8').on('data', (d: string) => {
        buf += d;
        const nl = buf.indexOf('\n');
        if (nl >= 0) s.end(reply(buf.slice(0, nl)));
      });
    });
    srv.listen(path.join(dir, 'agent.sock'), () => resolve(srv));
  });
}

t.test('no agent: exit 1 and says so', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brindlectl-ns-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const r = await brindlectl(['node', 'status'], { env: { BRINDLE_RUN_DIR: dir } });
  t.equal(r.code, 1);
  t.match(r.stderr, /agent is not running/);
  t.match(r.stderr, path.join(dir, 'agent.sock'));
});

t.test('table from the agent socket', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brindlectl-ns-'));
  const now = Date.now();
  let asked = '';
  const srv = await agentSocket(dir, (req) => {
    asked = req;
    return JSON.stringify({
      node: 'node-1', asn: 64512, routerId: '198.18.0.11', problems: ['pool p has no route'],
      peers: [
        { address: '198.18.0.12', port: 179, asn: 64512, type: 'nodeMesh', state: 'Established', since: now - 5000, info: '', received: 1, advertised: 1 },
        { address: '198.18.0.13', port: 179, asn: 64512, type: 'rrClient', state: 'Active', since: now - 1000, info: 'connection refused', received: 0, advertised: 0 },
        { address: 'fd00::1', port: 179, asn: 64600, type: 'global', state: 'Established', since: now, info: '', received: 0, advertised: 0 },
      ],
    }) + '\n';
  });
  t.teardown(() => { srv.close(); fs.rmSync(dir, { recursive: true, force: true }); });
  let r = await brindlectl(['node', 'status'], { env: { BRINDLE_RUN_DIR: dir } });
  t.equal(r.code, 0, r.stderr);
  t.same(JSON.parse(asked), { cmd: 'status' });
  t.match(r.stdout, /PEER ADDRESS \|\s+PEER TYPE\s+\|\s+STATE\s+\|\s+SINCE\s+\|\s+INFO/);
  t.match(r.stdout, /\| 198\.18\.0\.12\s+\| node-to-node mesh\s+\| Established \| \d\d:\d\d:\d\d \|/);
  t.match(r.stdout, /\| 198\.18\.0\.13\s+\| route reflector client \| Active\s+\| \d\d:\d\d:\d\d \| connection refused \|/);
  t.match(r.stdout, /IPv6 BGP status[\s\S]*fd00::1\s+\| global/);
  t.match(r.stdout, /pool p has no route/);
  r = await brindlectl(['node', 'status', '-o', 'json', '--run-dir', dir]);
  t.equal(JSON.parse(r.stdout).peers.length, 3);
});

t.test('an agent answering garbage is one clear line', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brindlectl-ns-'));
  const srv = await agentSocket(dir, () => 'not json\n');
  t.teardown(() => { srv.close(); fs.rmSync(dir, { recursive: true, force: true }); });
  const r = await brindlectl(['node', 'status'], { env: { BRINDLE_RUN_DIR: dir } });
  t.equal(r.code, 1);
  t.equal(r.stderr.trim().split('\n').length, 1);
  t.match(r.stderr, /malformed/);
});
