// The netlink library's public surface in one import (each file can also be imported alone).
export * from './constants';
export * from './errors';
export { NetlinkSocket, type NetlinkRequest, type BatchOptions } from './socket';
export * from './netns';
export * from './link';
export * from './addr';
export * from './route';
export * from './neigh';
export * from './sysctl';
