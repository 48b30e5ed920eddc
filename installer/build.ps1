# Build the one-folder application on Windows into dist\StudioCatalog and check it: it must
# start in a real window, process the bundled sample photo and export it.
#   powershell -ExecutionPolicy Bypass -File installer\build.ps1
# Needs the venv (.venv) with the app and torch installed and the models in weights\ (see
# docs\installer.md); the same spec as Linux and macOS: installer\studio_catalog.spec.
$ErrorActionPreference = "Stop"
Set-Location (Join-Path $PSScriptRoot "..")
$py = ".venv\Scripts\python.exe"
& $py -m pip install -q "pyinstaller>=6.5"
if ($LASTEXITCODE -ne 0) { throw "pip install pyinstaller failed" }
$t0 = Get-Date
& $py -m PyInstaller --noconfirm --clean --distpath dist --workpath build\pyinstaller installer\studio_catalog.spec
if ($LASTEXITCODE -ne 0) { throw "PyInstaller failed" }
$size = (Get-ChildItem dist\StudioCatalog -Recurse | Measure-Object -Property Length -Sum).Sum / 1MB
Write-Host ("build took {0:N0} s; bundle size: {1:N0} MB" -f ((Get-Date) - $t0).TotalSeconds, $size)

Write-Host "==> self-test of the bundle"
$out = Join-Path $env:TEMP ("studio-catalog-selftest-" + [guid]::NewGuid())
# the console launcher waits and reports on stdout/stderr; the windowed one would return at once
& dist\StudioCatalog\studio-catalog.exe --self-test $out
if ($LASTEXITCODE -ne 0) { throw "self-test failed (see above)" }
Get-Content (Join-Path $out "selftest.txt")
