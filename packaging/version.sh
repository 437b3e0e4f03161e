#!/bin/sh
# version.sh [DESCRIBE [COMMITS]]: print the package version of a build.
#
# DESCRIBE is "git describe --tags --always --dirty" output and COMMITS the
# number of commits ("git rev-list --count HEAD"); both are read from git
# when not given. The result is valid as a Debian upstream version
# (deb-version(7): digits first, then [A-Za-z0-9.+~]) and as an RPM Version
# (no "-"), and sorts the same way in both:
#
#   v1.2.0             1.2.0
#   v1.2.0-rc.1        1.2.0~rc.1          (~ sorts before the release)
#   v1.2.0-3-gabc1234  1.2.0+3.gabc1234    (3 commits after the tag)
#   abc1234 (no tag)   0.0.0+COMMITS.gabc1234
#   ...-dirty          ...+dirty, or .dirty after a +N.gHASH part
set -eu

if [ $# -ge 1 ]; then
	describe=$1
else
	describe=$(git describe --tags --always --dirty)
fi

orig=$describe
dirty=
case $describe in
*-dirty)
	dirty=1
	describe=${describe%-dirty}
	;;
esac

# Commits since the tag: the "-N-gHASH" suffix git describe adds.
since=
if expr "$describe" : '.*-[0-9][0-9]*-g[0-9a-f][0-9a-f]*$' >/dev/null; then
	hash=${describe##*-g}
	rest=${describe%-g*}
	n=${rest##*-}
	describe=${rest%-*}
	since="$n.g$hash"
elif expr "$describe" : '[0-9a-f][0-9a-f]*$' >/dev/null && ! expr "$describe" : '.*\.' >/dev/null; then
	# No tag at all: only an abbreviated commit hash.
	if [ $# -ge 2 ]; then
		n=$2
	else
		n=$(git rev-list --count HEAD)
	fi
	since="$n.g$describe"
	describe=0.0.0
fi

version=${describe#v}
# A semver pre-release ("-rc.1") sorts before its release with "~".
case $version in
*-*) version=$(printf '%s' "$version" | sed 's/-/~/') ;;
esac
if [ -n "$since" ]; then
	version="$version+$since"
fi
if [ -n "$dirty" ]; then
	case $version in
	*+*) version="$version.dirty" ;;
	*) version="$version+dirty" ;;
	esac
fi

if ! expr "$version" : '[0-9][A-Za-z0-9.+~]*$' >/dev/null; then
	echo "version.sh: cannot make a package version of \"$orig\" (tags must look like v1.2.3)" >&2
	exit 1
fi
printf '%s\n' "$version"
