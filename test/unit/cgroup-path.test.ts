import { describe, expect, it } from 'vitest';
import { expandSlice, resolveCgroupPath, type PathContext } from '../../src/cgroups/path.js';

const root: PathContext = { id: 'c1', rootless: false, ownCgroup: '/user.slice/session-1.scope', base: '/' };
const user: PathContext = { id: 'c1', rootless: true, ownCgroup: '/user/1000/session', base: '/user/1000' };

describe('cgroup paths', () => {
  it('defaults to /hako/<id> for root and below the delegated subtree rootless', () => {
    expect(resolveCgroupPath(undefined, root)).toBe('/hako/c1');
    expect(resolveCgroupPath('', user)).toBe('/user/1000/hako/c1');
  });

  it('takes absolute paths from the v2 root and relative ones next to our own cgroup (runc)', () => {
    expect(resolveCgroupPath('/machine/c1', root)).toBe('/machine/c1');
    expect(resolveCgroupPath('pods/c1', root)).toBe('/user.slice/pods/c1');
    expect(resolveCgroupPath('pods/c1', user)).toBe('/user/1000/pods/c1');
    expect(resolveCgroupPath('/user/1000/x/./y', user)).toBe('/user/1000/x/y');
  });

  it('maps the systemd form slice:prefix:name without D-Bus', () => {
    expect(resolveCgroupPath('system.slice:docker:abc', root)).toBe('/system.slice/docker-abc.scope');
    expect(resolveCgroupPath('kubepods-besteffort-pod1.slice:cri-containerd:abc', root)).toBe(
      '/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/cri-containerd-abc.scope',
    );
    expect(resolveCgroupPath(':podman:abc', user)).toBe('/user/1000/user.slice/podman-abc.scope');
    expect(resolveCgroupPath('::abc', root)).toBe('/system.slice/abc.scope');
    expect(expandSlice('-.slice')).toBe('/');
  });

  it('refuses paths that escape, name the base itself or break slice rules', () => {
    expect(() => resolveCgroupPath('/a/../../etc', root)).toThrow('linux.cgroupsPath: "/a/../../etc" may not contain ".."');
    expect(() => resolveCgroupPath('../other', user)).toThrow(/may not contain/);
    expect(() => resolveCgroupPath('/system.slice/x', user)).toThrow(
      'linux.cgroupsPath: "/system.slice/x" resolves to /system.slice/x, outside the cgroup subtree /user/1000 this user may write',
    );
    expect(() => resolveCgroupPath('/', root)).toThrow('names the root cgroup');
    expect(() => resolveCgroupPath('/user/1000', user)).toThrow(/outside the cgroup subtree/);
    expect(() => resolveCgroupPath('system:docker:abc', root)).toThrow('is not a systemd slice name');
    expect(() => resolveCgroupPath('a--b.slice:docker:abc', root)).toThrow('is not a valid systemd slice name');
    expect(() => resolveCgroupPath(undefined, { ...root, id: '../x' })).toThrow('container id "../x" cannot name a cgroup');
  });
});
