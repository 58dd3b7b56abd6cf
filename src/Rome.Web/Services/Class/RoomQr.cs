using QRCoder;

namespace Rome.Web.Services.Class;

/// <summary>A room's join link as a QR code for the projector (SVG, drawn from the link alone).</summary>
public static class RoomQr
{
    public static string Svg(string link)
    {
        using var generator = new QRCodeGenerator();
        using var data = generator.CreateQrCode(link, QRCodeGenerator.ECCLevel.M);
        return new SvgQRCode(data).GetGraphic(6);
    }
}
