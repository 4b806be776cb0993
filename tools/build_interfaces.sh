#!/usr/bin/env bash
# Build the ROS 2 interface packages under interfaces/ into VENV (idempotent; prints only what it skips).
#
#   tools/build_interfaces.sh VENV
#
# A package whose Python module VENV's python already imports from elsewhere (a sourced ROS install) is
# skipped. The others are built with ament_cmake and the rosidl generators (the PyPI wheels pinned in
# requirements-interfaces.txt, or the sourced ROS install's) and installed with VENV as the prefix, in the
# layout of the ros-jazzy-* wheels: lib/lib<pkg>__rosidl_*.so, lib/python3.X/site-packages/<pkg>/,
# share/<pkg>/ and share/ament_index/. On the PyPI venv the wheels' ros_wheels_bootstrapper (a .pth file)
# puts VENV/lib on the loader path at every python start, where rosidl_typesupport_c's dispatch dlopens
# lib<pkg>__rosidl_typesupport_fastrtps_c.so by name: nothing to set by hand.
# Only the C and Python generators run (ROSIDL_PYTHON_ONLY in interfaces/*/CMakeLists.txt): rclpy over
# rmw_fastrtps_cpp uses the C type supports only.
set -euo pipefail
VENV=${1:?usage: tools/build_interfaces.sh VENV}
cd "$(dirname "$0")/.."
VENV=$(cd "$VENV" && pwd)
PY="$VENV/bin/python"
ROOT=$(pwd)

# What a package's installed build was made from: its files, this script and the pins.
stamp_of() {
  { find "interfaces/$1" -type f | LC_ALL=C sort | xargs sha256sum
    sha256sum tools/build_interfaces.sh requirements-interfaces.txt; } | sha256sum | cut -d' ' -f1
}
# Where VENV's python finds a module ("" where it does not).
module_origin() {
  "$PY" -c "import importlib.util as u, sys; s = u.find_spec(sys.argv[1])
print('' if s is None else s.origin or list(s.submodule_search_locations)[0])" "$1"
}

todo=()
for xml in interfaces/*/package.xml; do
  pkg=$(basename "$(dirname "$xml")")
  stamp_file="$VENV/share/$pkg/vla_ros_interfaces.stamp"
  origin=$(module_origin "$pkg")
  if [ -f "$stamp_file" ]; then  # built here before: rebuilt when its sources changed
    [ -n "$origin" ] && [ "$(cat "$stamp_file")" = "$(stamp_of "$pkg")" ] && continue
  elif [ -n "$origin" ]; then
    echo "build_interfaces: skipping $pkg: a ROS install provides it ($origin)"
    continue
  fi
  todo+=("$pkg")
done
[ ${#todo[@]} = 0 ] && exit 0

# The build tools: a sourced ROS install's where rclpy comes from one (no PyPI wheels over it), else the wheels.
system_ros=0
case "$(module_origin rclpy)" in
  "") echo "build_interfaces: rclpy is not importable in $VENV" >&2; exit 1 ;;
  "$VENV"/*)
    "$PY" -m pip install --disable-pip-version-check -q -r requirements-interfaces.txt \
      2> >(grep -v "^WARNING: Location" >&2) ;;
  *) system_ros=1 ;;
esac
for tool in cmake make cc c++; do
  command -v $tool >/dev/null || { echo "build_interfaces: $tool is missing (apt-get install cmake g++)" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/build_interfaces.XXXXXX")
trap 'rm -rf "$work"' EXIT
# The wheels' exported CMake targets name include directories of the machine that built them
# (/opt/python/...): drop the missing ones before CMake's generate step rejects them.
cat > "$work/drop_missing_includes.cmake" <<'EOF'
function(_drop_missing_imported_includes)
  get_directory_property(_targets DIRECTORY "${CMAKE_SOURCE_DIR}" IMPORTED_TARGETS)
  foreach(_t IN LISTS _targets)
    get_target_property(_dirs ${_t} INTERFACE_INCLUDE_DIRECTORIES)
    if(_dirs)
      set(_kept "")
      foreach(_d IN LISTS _dirs)
        if(EXISTS "${_d}" OR _d MATCHES "^\\$<")
          list(APPEND _kept "${_d}")
        endif()
      endforeach()
      set_target_properties(${_t} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${_kept}")
    endif()
  endforeach()
endfunction()
cmake_language(DEFER DIRECTORY "${CMAKE_SOURCE_DIR}" CALL _drop_missing_imported_includes)
EOF

export AMENT_PREFIX_PATH="$VENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
export CMAKE_PREFIX_PATH="$VENV${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
export PATH="$VENV/bin:$PATH"
# One make over all packages, so that their configure and build steps share the -j slots. RPATH $ORIGIN
# (lib/) and $ORIGIN/../../.. (site-packages/<pkg>/ -> lib/): the libraries find each other without a loader path.
{
  echo "all: ${todo[*]}"
  for pkg in "${todo[@]}"; do
    echo "$pkg:"
    printf '\tcmake -S %q -B %q -DCMAKE_INSTALL_PREFIX=%q -DPython3_EXECUTABLE=%q -DBUILD_TESTING=OFF' \
      "$ROOT/interfaces/$pkg" "$work/$pkg" "$VENV" "$PY"
    printf " -DROSIDL_PYTHON_ONLY=ON -DCMAKE_PROJECT_INCLUDE=%q -DCMAKE_INSTALL_RPATH='\$\$ORIGIN;\$\$ORIGIN/../../..' >%q 2>&1\n" \
      "$work/drop_missing_includes.cmake" "$work/$pkg.log"
    printf '\t$(MAKE) -C %q >>%q 2>&1\n' "$work/$pkg" "$work/$pkg.log"
    printf '\ttouch %q\n' "$work/$pkg.built"
  done
} > "$work/Makefile"
make -s -k -j"$(nproc)" -f "$work/Makefile" >"$work/make.log" 2>&1 || true
failed=0
for pkg in "${todo[@]}"; do
  [ -f "$work/$pkg.built" ] && continue
  echo "build_interfaces: building $pkg failed; the end of its log:" >&2
  tail -25 "$work/$pkg.log" >&2
  failed=1
done
[ "$failed" = 0 ] || exit 1

# Install (the files of a package's previous build go first), then stamp.
for pkg in "${todo[@]}"; do
  manifest="$VENV/share/$pkg/vla_ros_interfaces.manifest"
  if [ -f "$manifest" ]; then xargs -r -d '\n' rm -f < "$manifest"; fi
  make -s -C "$work/$pkg" install >>"$work/$pkg.log" 2>&1 \
    || { echo "build_interfaces: installing $pkg failed:" >&2; tail -20 "$work/$pkg.log" >&2; exit 1; }
  cp "$work/$pkg/install_manifest.txt" "$manifest"
  if [ "$system_ros" = 1 ]; then
    # No bootstrapper puts VENV/lib on the loader path beside a sourced ROS install: load the C type
    # supports that rosidl_typesupport_c dlopens by name when the package is imported (glibc then finds
    # them loaded). The PyPI venv keeps the wheels' layout untouched.
    cat >> "$(grep -m1 "/$pkg/__init__.py\$" "$manifest")" <<'EOF'
import ctypes as _ctypes, pathlib as _pathlib  # noqa: E401 (tools/build_interfaces.sh)
for _lib in sorted(_pathlib.Path(__file__).parents[3].glob(f'lib{__name__}__rosidl_typesupport_*.so')):
    _ctypes.CDLL(str(_lib))
EOF
  fi
  stamp_of "$pkg" > "$VENV/share/$pkg/vla_ros_interfaces.stamp"
done
# Every interface of every package built imports, with its C type support.
"$PY" - "$ROOT/interfaces" "${todo[@]}" <<'EOF' || { echo "build_interfaces: an installed interface does not load" >&2; exit 1; }
import importlib, pathlib, sys
root = pathlib.Path(sys.argv[1])
for pkg in sys.argv[2:]:
    for kind in ("msg", "srv", "action"):
        for f in sorted((root / pkg / kind).glob("*." + kind)):
            getattr(importlib.import_module(f"{pkg}.{kind}"), f.stem).__class__.__import_type_support__()
EOF
