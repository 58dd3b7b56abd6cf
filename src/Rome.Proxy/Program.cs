// A reverse proxy in front of several Rome.Web replicas (YARP, configured in appsettings.json's "ReverseProxy"
// section). Blazor Server keeps each tab's state in a circuit on one replica, so every request of a browser must
// reach the replica that served its page: session affinity by cookie. Health checks (each replica's /healthz, and
// failed requests) notice a replica that is gone; its browsers are then sent to another one, where their old
// circuits are unknown, and the page says so (the reconnect dialog). A class room's join link goes to the replica
// that holds the room (its code's first character names it; the replicas' names are the destinations' ids).
//   dotnet run --project src/Rome.Proxy -- --urls http://0.0.0.0:8080 \
//     --ReverseProxy:Clusters:rome:Destinations:a:Address=http://127.0.0.1:5001 \
//     --ReverseProxy:Clusters:rome:Destinations:b:Address=http://127.0.0.1:5002
var builder = WebApplication.CreateBuilder(args);
builder.Services.AddReverseProxy().LoadFromConfig(builder.Configuration.GetSection("ReverseProxy"));
var app = builder.Build();
app.MapReverseProxy(proxy =>
{
    // A class room lives on the replica that created it, and its code says which (ReplicaMark): a join link goes
    // there, and the affinity cookie then keeps the student there. Other requests: affinity, else round robin.
    proxy.Use((context, next) =>
    {
        if (Rome.Web.Services.Class.ReplicaMark.JoinedCode(context.Request.Path.Value ?? "") is { Length: > 0 } code)
        {
            var feature = context.GetReverseProxyFeature();
            var holder = feature.AvailableDestinations.Where(d => Rome.Web.Services.Class.ReplicaMark.Of(d.DestinationId) == code[0]).ToList();
            if (holder.Count > 0) feature.AvailableDestinations = holder;
        }
        return next();
    });
    proxy.UseSessionAffinity();
    proxy.UseLoadBalancing();
    proxy.UsePassiveHealthChecks();
});
app.Run();
