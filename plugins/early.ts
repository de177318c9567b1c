// Entry of the early script (scripts/build.mjs): the executable runs it first when it is
// exec'd as the `brindle` plugin for an ADD, before compiling the plugin itself, to start a
// delegated IPAM plugin as soon as possible (lib/cni/early.ts).
import { startEarlyIpam } from '../lib/cni/early';
import { mark } from '../lib/log';

startEarlyIpam();
mark('early');
