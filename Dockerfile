# The web demo on the bundled models, as a container (issue #15: serving a class).
#   docker build -t rome .
#   docker run -p 8080:8080 rome                  # then http://localhost:8080
# Several replicas behind a proxy with session affinity: see the README, "Serving a class".

FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
# Restore first, so code changes do not re-download packages.
COPY Directory.Build.props Directory.Build.targets ./
COPY build/ build/
COPY src/Rome.Model/Rome.Model.csproj src/Rome.Model/
COPY src/Rome.Web/Rome.Web.csproj src/Rome.Web/
RUN dotnet restore src/Rome.Web/Rome.Web.csproj
COPY src/ src/
# The TorchSharp patch (build/ElfWeakVersion.targets), applied whatever libstdc++ the build image has, since the
# image may run on another.
RUN dotnet publish src/Rome.Web/Rome.Web.csproj -c Release --no-restore -o /app -p:RomeWeakGlibcxxAlways=true

FROM mcr.microsoft.com/dotnet/aspnet:10.0
WORKDIR /app
COPY --from=build /app ./
# appsettings.json in the content root configures the app; relative paths are relative to /app.
COPY appsettings.json ./
COPY models/rome-knowing/ models/rome-knowing/
COPY models/rome-tiny/ models/rome-tiny/
# Caches (noise level, C, context templates) are written here: the only folder the app writes.
RUN mkdir -p /app/.cache && chown "$APP_UID" /app/.cache
ENV ASPNETCORE_URLS=http://+:8080 \
    ASPNETCORE_ENVIRONMENT=Production \
    MALLOC_ARENA_MAX=2
EXPOSE 8080
# Non-root: the aspnet images define the user 'app' ($APP_UID).
USER $APP_UID
ENTRYPOINT ["dotnet", "Rome.Web.dll"]
