#!/usr/bin/env bash
# Rebuilds dlib's reference landmarks that LandmarkReferenceTests compares ShapePredictor with:
#  1. builds dlib_landmarks_ref against Debian's libdlib-dev (g++, pkg-config dlib-1);
#  2. has the test project write the inputs (PGMs + cases.txt) of tests/MicroExpr.Tests/Data/LandmarkCases.cs;
#  3. runs dlib on them and writes tests/MicroExpr.Tests/Data/Landmarks/dlib-68-reference.txt (numbers only).
# Needs: apt-get install g++ pkg-config libdlib-dev libdlib-data opencv-doc. Run from anywhere.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
model="${1:-/usr/share/dlib/shape_predictor_68_face_landmarks.dat}"
work="$(mktemp -d "${TMPDIR:-/tmp}/dlib-ref.XXXXXX")"
trap 'rm -rf "$work"' EXIT

g++ -O2 -std=c++17 -o "$work/dlib_landmarks_ref" "$here/dlib_landmarks_ref.cpp" $(pkg-config --cflags --libs dlib-1)
MICROEXPR_LANDMARK_CASES="$work/cases" dotnet test "$root/tests/MicroExpr.Tests" -c Release \
    --filter "FullyQualifiedName~LandmarkReferenceTests.WriteReferenceInputs" >"$work/dotnet.log" || { cat "$work/dotnet.log"; exit 1; }
test -s "$work/cases/cases.txt" || { echo "no cases written (see dotnet test output)"; cat "$work/dotnet.log"; exit 1; }
out="$root/tests/MicroExpr.Tests/Data/Landmarks/dlib-68-reference.txt"
"$work/dlib_landmarks_ref" "$model" "$work/cases/cases.txt" | sed "s|$work/cases/||g" >"$out"
echo "wrote $out ($(grep -vc '^#' "$out") points)"
